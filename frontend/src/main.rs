//! Mounts the app; everything else is in the library so tests can reach it.

fn main() {
    // A panic's message in the console (what console_error_panic_hook
    // does, without the JS stack capture it brings along).
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&info.to_string().into());
    }));
    frontend::browser::mark("wasm-start");
    leptos::mount::mount_to_body(frontend::App);
    // Rendered with its handlers attached: time to interactive.
    frontend::browser::mark("interactive");
}

//! Mounts the app; everything else is in the library so tests can reach it.

fn main() {
    console_error_panic_hook::set_once();
    frontend::browser::mark("wasm-start");
    leptos::mount::mount_to_body(frontend::App);
    // Rendered with its handlers attached: time to interactive.
    frontend::browser::mark("interactive");
}

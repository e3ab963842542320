//! Mounts the app; everything else is in the library so tests can reach it.

#[cfg(target_family = "wasm")]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

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

//! A hello-world HTTP component, served by the same runtime as the handler
//! in `make bench` so the handler's figures have a reference point. Only the
//! wasm32 build has content.

#[cfg(target_arch = "wasm32")]
mod component {
    use spin_sdk::http::{IntoResponse, Request, Response};
    use spin_sdk::http_component;

    /// Answers every request with a fixed short text.
    #[http_component]
    fn hello(_req: Request) -> impl IntoResponse {
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body("hello\n")
            .build()
    }
}

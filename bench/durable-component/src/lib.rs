//! A minimal durable-write HTTP component, served by the same runtime as the
//! handler in `make bench`: the floor under the handler's `good`. Every
//! request writes one small file the way the handler writes a queue entry
//! (create in `/queue/tmp`, write, fsync, rename into `/queue/new`, fsync
//! `new/`) and answers 200; nothing else. Only the wasm32 build has content.

#[cfg(target_arch = "wasm32")]
mod component {
    use std::fs::{self, File};
    use std::io::Write;

    use spin_sdk::http::{IntoResponse, Request, Response};
    use spin_sdk::http_component;

    /// Names in `new/` rotate over this many, like the handler's entries
    /// over the benchmark's hosts.
    const NAMES: u64 = 1000;
    /// About the size of a handler queue entry.
    const ENTRY: &[u8] = br#"{"format":1,"host":"h0.dyn.example.com","type":"A","address":"198.51.100.1","requested_at":"2026-01-01T00:00:00.000000000Z","user":"u0","client":null}"#;

    fn write_durably() -> std::io::Result<()> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
        let n = u64::from_le_bytes(random);
        let tmp = format!("/queue/tmp/entry.{n:016x}.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(ENTRY)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, format!("/queue/new/entry-{}.json", n % NAMES))?;
        File::open("/queue/new")?.sync_all()
    }

    /// Writes one entry durably, then answers.
    #[http_component]
    fn durable(_req: Request) -> impl IntoResponse {
        let (status, body) = match write_durably() {
            Ok(()) => (200, "written\n".to_string()),
            Err(e) => (500, format!("{e}\n")),
        };
        Response::builder()
            .status(status)
            .header("content-type", "text/plain")
            .body(body)
            .build()
    }
}

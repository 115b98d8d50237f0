//! A diagnostic HTTP component for `make bench`: where a handler target is
//! missed, the report shows what one file operation costs on each runtime.
//! `GET /OP?n=N` runs the operation N times in one request against the
//! `/data` mount and answers `OP N NANOSECONDS` (the time of the loop, taken
//! inside the component, so it holds the runtime's WASI work and nothing of
//! HTTP or instantiation). Only the wasm32 build has content.

#[cfg(target_arch = "wasm32")]
mod component {
    use std::fs::{self, File};
    use std::io::{Read, Write};
    use std::time::Instant;

    use spin_sdk::http::{IntoResponse, Request, Response};
    use spin_sdk::http_component;

    /// A small file the bench driver creates in the mount (like a view file).
    const SMALL: &str = "/data/small.json";

    /// One operation; errors end the loop.
    fn op(name: &str, i: u32) -> std::io::Result<()> {
        match name {
            // what the loop costs by itself
            "noop" => Ok(()),
            "stat" => fs::metadata(SMALL).map(drop),
            "open" => File::open(SMALL).map(drop),
            // open, read to the end, close: how the handler reads a view file
            "read" => {
                let mut buf = Vec::with_capacity(512);
                File::open(SMALL)?.read_to_end(&mut buf).map(drop)
            }
            // the lookup of a file that is not there (no pending entry)
            "missing" => match File::open("/data/missing.json") {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
                Ok(_) => Err(std::io::Error::other("missing.json exists")),
            },
            // create, write, close (no flush)
            "write" => {
                let mut f = File::create(format!("/data/tmp/w{}", i % 64))?;
                f.write_all(&[b'x'; 160])
            }
            "fsync" => {
                let mut f = File::create(format!("/data/tmp/s{}", i % 64))?;
                f.write_all(&[b'x'; 160])?;
                f.sync_all()
            }
            "rename" => {
                let from = format!("/data/tmp/r{i}");
                File::create(&from)?;
                fs::rename(&from, "/data/new/renamed")
            }
            "dirsync" => File::open("/data/new")?.sync_all(),
            _ => Err(std::io::Error::other("unknown operation")),
        }
    }

    /// Times `n` runs of the operation the path names.
    #[http_component]
    fn fileops(req: Request) -> impl IntoResponse {
        let name = req.path().trim_start_matches('/').to_string();
        let n: u32 = req
            .query()
            .strip_prefix("n=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let start = Instant::now();
        let mut result = Ok(());
        for i in 0..n {
            result = op(&name, i);
            if result.is_err() {
                break;
            }
        }
        let nanos = start.elapsed().as_nanos();
        let (status, body) = match result {
            Ok(()) => (200, format!("{name} {n} {nanos}\n")),
            Err(e) => (500, format!("{name}: {e}\n")),
        };
        Response::builder()
            .status(status)
            .header("content-type", "text/plain")
            .body(body)
            .build()
    }
}

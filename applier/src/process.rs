//! Running an external program with an argument list (never a shell), a
//! timeout, and captured output. The child gets its own process group, so a
//! Ctrl-C meant for the applier does not cut a Plesk call in half, and a
//! timeout kills everything the call started.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How a finished program ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Why a program did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It could not be started.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran longer than allowed and was killed.
    #[error("timed out after {0:?} and was killed")]
    Timeout(Duration),
    /// Waiting for it failed.
    #[error("waiting for the program failed: {0}")]
    Wait(std::io::Error),
}

/// Largest output kept from one call.
const MAX_OUTPUT: u64 = 16 * 1024 * 1024;

fn reader(stream: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stream {
            let _ = s.take(MAX_OUTPUT).read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `program` with `args`, waiting at most `timeout`.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<Finished, RunError> {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let pid = child.id();
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let timed_out = match rx.recv_timeout(timeout) {
        Ok(()) => false,
        Err(_) => {
            if let Some(pgid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            true
        }
    };
    let status = waiter
        .join()
        .map_err(|_| RunError::Wait(std::io::Error::other("waiter thread panicked")))?
        .map_err(RunError::Wait)?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if timed_out {
        return Err(RunError::Timeout(timeout));
    }
    Ok(Finished {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_code() {
        let f = run(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(f.code, Some(3));
        assert_eq!(f.stdout, "out\n");
        assert_eq!(f.stderr, "err\n");
    }

    #[test]
    fn arguments_are_not_interpreted_by_a_shell() {
        let f = run(
            Path::new("/bin/echo"),
            &["$(id)", ";", "`reboot`"],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(f.stdout, "$(id) ; `reboot`\n");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let started = Instant::now();
        // the grandchild would keep the pipe open if it survived
        let err = run(
            Path::new("/bin/sh"),
            &["-c", "sleep 30 & sleep 30"],
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Timeout(_)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn missing_program() {
        assert!(matches!(
            run(Path::new("/nonexistent/plesk"), &[], Duration::from_secs(1)),
            Err(RunError::Spawn { .. })
        ));
    }
}

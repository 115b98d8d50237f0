//! Running an external program with an argument list (never a shell), a
//! timeout that bounds the whole call (its output included), and captured
//! output. The child gets its own process group, so a Ctrl-C meant for the
//! applier does not cut a Plesk call in half, and a timeout kills everything
//! the call started that stayed in the group.

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

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

/// Largest output kept from one call; more is read and dropped, so the
/// program never blocks on a full pipe.
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// Longest pause between two checks whether the program has exited, once
/// its output is closed (it normally exits right after).
const EXIT_POLL_MAX: Duration = Duration::from_millis(20);

/// One output stream of the program, read without blocking.
struct Capture<F: AsFd> {
    pipe: Option<F>,
    data: Vec<u8>,
}

impl<F: AsFd> Capture<F> {
    fn new(pipe: Option<F>) -> std::io::Result<Capture<F>> {
        if let Some(p) = &pipe {
            let flags = rustix::fs::fcntl_getfl(p)?;
            rustix::fs::fcntl_setfl(p, flags | OFlags::NONBLOCK)?;
        }
        Ok(Capture {
            pipe,
            data: Vec::new(),
        })
    }

    fn open(&self) -> bool {
        self.pipe.is_some()
    }

    /// Reads what is there; closes the stream at end of file or on error.
    fn drain(&mut self) {
        let Some(pipe) = &self.pipe else { return };
        let mut buf = [0u8; 8192];
        loop {
            match rustix::io::read(pipe, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.data.len());
                    self.data.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return,
                Err(_) => break,
            }
        }
        self.pipe = None;
    }
}

/// True once the child has exited. The child is not reaped, so its process
/// id (and group id) cannot be reused while we may still signal the group.
fn has_exited(pid: Pid) -> bool {
    matches!(
        rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ),
        Ok(Some(_)) | Err(_)
    )
}

/// Runs `program` with `args`. The whole call is bounded by `timeout`: the
/// program must exit and close its output within it. Past that, its
/// process group is killed, and output still held open by anything that
/// left the group (a daemon, a `setsid` grandchild) is abandoned.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<Finished, RunError> {
    let started = Instant::now();
    let deadline = started + timeout;
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
    let pid = Pid::from_raw(child.id() as i32)
        .ok_or_else(|| RunError::Wait(std::io::Error::other("child has no process id")))?;
    let captured = Capture::new(child.stdout.take())
        .and_then(|out| Ok((out, Capture::new(child.stderr.take())?)));
    let (mut out, mut err) = match captured {
        Ok(pair) => pair,
        Err(e) => {
            kill_and_reap(&mut child, pid);
            return Err(RunError::Wait(e));
        }
    };
    let mut exited = false;
    let mut exit_poll = Duration::from_millis(1);
    let timed_out = loop {
        exited = exited || has_exited(pid);
        if exited && !out.open() && !err.open() {
            break false;
        }
        let now = Instant::now();
        if now >= deadline {
            break true;
        }
        let mut wait = deadline - now;
        if !out.open() && !err.open() {
            // Output closed, program still running: look again shortly.
            wait = wait.min(exit_poll);
            exit_poll = (exit_poll * 2).min(EXIT_POLL_MAX);
        }
        wait_readable(&out, &err, wait);
        out.drain();
        err.drain();
    };
    if timed_out {
        kill_and_reap(&mut child, pid);
        return Err(RunError::Timeout(timeout));
    }
    let status = child.wait().map_err(RunError::Wait)?;
    Ok(Finished {
        code: status.code(),
        stdout: String::from_utf8_lossy(&out.data).into_owned(),
        stderr: String::from_utf8_lossy(&err.data).into_owned(),
        elapsed: started.elapsed(),
    })
}

/// Waits at most `limit` for output on the open streams (or just sleeps
/// when none is open).
fn wait_readable<A: AsFd, B: AsFd>(out: &Capture<A>, err: &Capture<B>, limit: Duration) {
    let timeout = Timespec::try_from(limit).unwrap_or(Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    });
    let mut fds = Vec::with_capacity(2);
    if let Some(p) = &out.pipe {
        fds.push(PollFd::new(p, PollFlags::IN));
    }
    if let Some(p) = &err.pipe {
        fds.push(PollFd::new(p, PollFlags::IN));
    }
    if fds.is_empty() {
        thread::sleep(limit);
    } else {
        // EINTR or an error: the caller looks at the clock and the pipes again.
        let _ = poll(&mut fds, Some(&timeout));
    }
}

/// Kills the program's process group (everything it started that stayed in
/// it) and collects the program's exit status. A program that does not die
/// at once (stuck in the kernel) is collected by a background thread.
fn kill_and_reap(child: &mut Child, pid: Pid) {
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Ok(Some(_)) | Err(_) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let pid = pid.as_raw_nonzero();
    let _ = thread::Builder::new()
        .name(format!("reap-{pid}"))
        .spawn(move || {
            let _ = rustix::process::waitpid(
                Pid::from_raw(pid.get()),
                rustix::process::WaitOptions::empty(),
            );
        });
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

    /// Kills the processes whose ids a test's script wrote to `pids`.
    fn kill_listed(pids: &Path) {
        for line in std::fs::read_to_string(pids).unwrap_or_default().lines() {
            if let Some(pid) = line.trim().parse().ok().and_then(Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
    }

    #[test]
    fn a_grandchild_in_its_own_session_holding_stdout_does_not_extend_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The program exits at once; its grandchild leaves the process group
        // (and the session) and keeps stdout open for 30 s.
        let script = format!(
            "echo started; setsid sh -c 'echo $$ > {}; exec sleep 30' & exit 0",
            pids.display()
        );
        let started = Instant::now();
        let result = run(
            Path::new("/bin/sh"),
            &["-c", &script],
            Duration::from_millis(500),
        );
        let elapsed = started.elapsed();
        kill_listed(&pids);
        assert!(matches!(result, Err(RunError::Timeout(_))), "{result:?}");
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    }

    #[test]
    fn a_hanging_program_with_a_daemonized_grandchild_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 30' & sleep 30",
            pids.display()
        );
        let started = Instant::now();
        let result = run(
            Path::new("/bin/sh"),
            &["-c", &script],
            Duration::from_millis(500),
        );
        let elapsed = started.elapsed();
        kill_listed(&pids);
        assert!(matches!(result, Err(RunError::Timeout(_))), "{result:?}");
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    }

    #[test]
    fn output_closed_early_still_waits_for_the_exit_code() {
        let f = run(
            Path::new("/bin/sh"),
            &["-c", "echo out; exec >&- 2>&-; sleep 0.2; exit 4"],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(f.code, Some(4));
        assert_eq!(f.stdout, "out\n");
    }

    #[test]
    fn large_output_is_capped_without_blocking_the_program() {
        let f = run(
            Path::new("/bin/sh"),
            &["-c", "head -c 20000000 /dev/zero; echo done >&2"],
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(f.code, Some(0));
        assert_eq!(f.stdout.len(), MAX_OUTPUT);
        assert_eq!(f.stderr, "done\n");
    }

    #[test]
    fn missing_program() {
        assert!(matches!(
            run(Path::new("/nonexistent/plesk"), &[], Duration::from_secs(1)),
            Err(RunError::Spawn { .. })
        ));
    }
}

//! Waiting for events without holding the GIL: poll(2) on the delivery
//! descriptors, in slices short enough that Ctrl-C (whose handler runs only
//! on the main thread, between bytecodes) is honoured promptly.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The longest single poll(2) between signal checks.
const SLICE: Duration = Duration::from_millis(50);

/// `timeout` in seconds: None waits forever, 0 does not wait.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err("timeout must be a non-negative number of seconds or None")),
        Some(t) => Ok(Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))),
    }
}

/// Waits until one of `fds` is readable, `deadline` passes (None: never)
/// or `done()` holds (checked between slices); returns which are readable.
/// The GIL is released while waiting.
pub(crate) fn wait_until(py: Python<'_>, fds: &[RawFd], deadline: Option<Instant>, done: impl Fn() -> bool) -> PyResult<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        let ms = slice.as_millis() as libc::c_int + i32::from(slice.subsec_nanos() % 1_000_000 != 0);
        let (rc, err) = py.detach(|| {
            // SAFETY: `pfds` is a valid array of pollfd for the call.
            let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
            (rc, std::io::Error::last_os_error())
        });
        if rc > 0 {
            return Ok(pfds.iter().map(|p| p.revents != 0).collect());
        }
        if rc < 0 && err.raw_os_error() != Some(libc::EINTR) {
            return Err(err.into());
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) || done() {
            return Ok(vec![false; fds.len()]);
        }
    }
}

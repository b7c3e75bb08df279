//! Waiting for events without holding the GIL: poll(2) on the delivery
//! descriptors, in slices short enough that Ctrl-C (whose handler runs only
//! on the main thread, between bytecodes) is honoured promptly.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::channel::Channel;
use crate::server::Server;

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

/// Is `fd` readable right now?
pub(crate) fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Waits until at least one of the channels and servers in ``objects`` has
/// events (``timeout`` seconds at most; None waits forever, 0 does not
/// wait), then runs the callbacks of every one that has (one batch each,
/// as its ``dispatch()``), and returns the number of events run. The GIL is
/// released while waiting. Servers accept here too. Returns 0 at once when
/// every object is done (channels ended or closed, servers closed).
///
/// An exception raised by a callback propagates at once; objects not yet
/// dispatched keep their events for the next call.
#[pyfunction]
#[pyo3(signature = (*objects, timeout=None))]
pub(crate) fn poll(py: Python<'_>, objects: &Bound<'_, PyTuple>, timeout: Option<f64>) -> PyResult<usize> {
    enum Obj<'a, 'py> {
        Ch(&'a Bound<'py, Channel>),
        Sv(&'a Bound<'py, Server>),
    }
    let items: Vec<Bound<'_, PyAny>> = objects.iter().collect();
    let mut objs = Vec::with_capacity(items.len());
    for o in &items {
        if let Ok(c) = o.cast::<Channel>() {
            objs.push(Obj::Ch(c));
        } else if let Ok(s) = o.cast::<Server>() {
            objs.push(Obj::Sv(s));
        } else {
            return Err(PyTypeError::new_err("poll() takes sluice.Channel and sluice.Server objects"));
        }
    }
    let ready_now = objs.iter().any(|o| match o {
        Obj::Ch(c) => c.get().has_pending(),
        Obj::Sv(s) => s.get().has_pending(),
    });
    let fds: Vec<RawFd> = objs
        .iter()
        .map(|o| match o {
            Obj::Ch(c) => c.get().raw_fd(),
            Obj::Sv(s) => s.get().raw_fd(),
        })
        .collect();
    // Nothing will ever come: do not wait (forever).
    let all_done = objs.iter().all(|o| match o {
        Obj::Ch(c) => c.get().is_done(),
        Obj::Sv(s) => s.get().closed(),
    });
    let deadline = if ready_now || all_done { Some(Instant::now()) } else { deadline(timeout)? };
    let done = || {
        objs.iter().all(|o| match o {
            Obj::Ch(c) => c.get().is_done(),
            Obj::Sv(s) => s.get().closed(),
        })
    };
    let readable = wait_until(py, &fds, deadline, done)?;
    let mut n = 0;
    for (o, r) in objs.iter().zip(readable) {
        n += match o {
            Obj::Ch(c) if r || c.get().has_pending() => c.get().dispatch_once(py)?,
            Obj::Sv(s) if r || s.get().has_pending() => s.get().dispatch_once(py)?,
            _ => 0,
        };
    }
    Ok(n)
}

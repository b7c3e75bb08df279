//! An echo worker: started by an engine with the runtime's arguments
//! (`--app NAME --endpoint PATH --protocol 1 --uuid UUID`), it answers every
//! session with its own chunks, closes each session when the engine closes
//! its side, and exits when the engine terminates it.
//!
//! ```sh
//! cargo run -q -p sluice-core --example worker -- --app echo --endpoint /tmp/e.sock --protocol 1 --uuid 1234
//! ```

use std::sync::mpsc;

use sluice_core::roles::{Worker, WorkerEvent, WorkerOptions};

fn main() {
    let opts = match WorkerOptions::from_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::exit(2);
        }
    };
    let (done_tx, done_rx) = mpsc::channel();
    let worker = Worker::connect(opts, move |w: &Worker, ev| match ev {
        WorkerEvent::Chunk { session, data } => {
            let _ = w.stream(session).write(&data);
        }
        WorkerEvent::Close { session } => {
            let _ = w.stream(session).close();
        }
        WorkerEvent::Terminate { code, .. } => {
            w.terminate(code, "worker shut down");
            let _ = done_tx.send(0);
        }
        WorkerEvent::Disconnected { errno, .. } => {
            eprintln!("worker: connection lost (errno {errno})");
            let _ = done_tx.send(1);
        }
        _ => {}
    });
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::exit(1);
        }
    };
    let code = done_rx.recv().unwrap_or(1);
    // Let the terminate reach the socket before the process ends (not the
    // engine's close of its side, which may never come: the worker exits
    // once its answer is written, as the runtime expects).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while worker.channel().is_some_and(|c| !c.is_finished() && c.queued() > 0) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::process::exit(code);
}

//! A child process after `fork()` gets a runtime of its own: the parent's
//! I/O threads do not exist in the child, so channels there must not use
//! them. (Alone in its test binary: fork and many threads mix badly.)

use std::sync::mpsc;
use std::time::Duration;

use sluice_core::net::{Channel, ChannelConfig, Endpoint, Event, Incoming, Server};
use sluice_core::wire::{Dialect, Message, Role};

fn round_trip(server: &Endpoint) -> bool {
    let (tx, rx) = mpsc::channel();
    let ch =
        Channel::connect(server.clone(), ChannelConfig::new(Dialect::V1, Some(Role::Worker)), move |ch: &Channel, ev: Event| match ev {
            Event::Connected => ch.send(1, &Message::Heartbeat).unwrap(),
            Event::Message { message: Message::Heartbeat, .. } => drop(tx.send(true)),
            Event::SocketError(_) => drop(tx.send(false)),
            _ => {}
        })
        .unwrap();
    let ok = rx.recv_timeout(Duration::from_secs(10)).unwrap_or(false);
    ch.close();
    ok
}

#[test]
fn a_forked_child_gets_a_fresh_runtime() {
    // An engine that answers heartbeats, served by the parent's runtime.
    let path = std::env::temp_dir().join(format!("sluice-fork-{}.sock", std::process::id()));
    let endpoint = Endpoint::Unix(path);
    let mut config = ChannelConfig::new(Dialect::V1, Some(Role::Engine));
    config.role = None;
    let server = Server::bind(&endpoint, config, |_: &Server, inc: Incoming| {
        inc.start(|ch: &Channel, ev: Event| {
            if let Event::Frame(f) = ev {
                let _ = ch.send_frame(f.session, f.ty, &f.args, &[]);
            }
        })
        .unwrap();
    })
    .unwrap();
    assert!(round_trip(server.local()), "the parent's channel works");

    // SAFETY: the child only runs sluice code and then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = round_trip(&endpoint);
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child's channel worked (status {status:#x})");
    assert!(round_trip(server.local()), "the parent's runtime still works");
    server.close();
}

//! The Janus client against a real Janus (Debian's `janus`, with
//! deploy/janus's config on a free loopback port). Skipped, saying so, where
//! the binary is missing: `scripts/setup.sh --test` installs it. No media
//! flows here (no PeerConnection is made), so nothing leaves loopback.

use relay::janus::{Error, Session};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Janus {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn janus_binary() -> Option<PathBuf> {
    let path = Path::new("/usr/bin/janus");
    path.is_file().then(|| path.to_owned())
}

/// deploy/janus's config, its WebSocket moved to a free port.
async fn start() -> Option<Janus> {
    let Some(bin) = janus_binary() else {
        eprintln!("no janus binary: skipped (scripts/setup.sh --test installs it)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir().join(format!("meshcast-janus-{port}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/janus");
    for f in [
        "janus.jcfg",
        "janus.plugin.videoroom.jcfg",
        "janus.transport.websockets.jcfg",
    ] {
        let text = std::fs::read_to_string(deploy.join(f)).expect("deploy/janus");
        let text = text.replace("ws_port = 8188", &format!("ws_port = {port}"));
        std::fs::write(dir.join(f), text).expect("write config");
    }
    let child = spawn(&bin, &dir, port).await;
    Some(Janus {
        child,
        url: format!("ws://127.0.0.1:{port}"),
        dir,
    })
}

/// Runs Janus with the config in `dir`; returns once its WebSocket accepts.
async fn spawn(bin: &Path, dir: &Path, port: u16) -> Child {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("janus.log"))
        .expect("log");
    let mut child = Command::new(bin)
        .arg("-F")
        .arg(dir)
        .arg("-C")
        .arg(dir.join("janus.jcfg"))
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("janus starts");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("janus did not listen on {port}");
}

/// The same Janus again (a stopped one), on its port; its URL.
async fn restart(janus: &mut Janus) -> String {
    let port = janus
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    janus.child = spawn(&janus_binary().expect("janus"), &janus.dir, port).await;
    janus.url.clone()
}

#[tokio::test]
async fn a_session_makes_and_destroys_a_videoroom_room() {
    let Some(janus) = start().await else { return };
    let session = Session::connect(&janus.url, None).await.expect("a session");
    let _alive = session.keep_alive();
    let handle = session
        .attach("janus.plugin.videoroom")
        .await
        .expect("attached");
    let room = 4242;
    let created = handle
        .message(
            json!({"request": "create", "room": room, "publishers": 16}),
            None,
        )
        .await
        .expect("created");
    assert_eq!(created.data["videoroom"], "created");
    assert_eq!(created.data["room"], room);
    let exists = json!({"request": "exists", "room": room});
    let r = handle.message(exists.clone(), None).await.expect("exists");
    assert_eq!(r.data["exists"], true);
    // Errors come back as errors, with Janus's code.
    let again = handle
        .message(json!({"request": "create", "room": room}), None)
        .await;
    assert!(
        matches!(again, Err(Error::Refused { code: 427, .. })),
        "{again:?}"
    );
    handle
        .message(json!({"request": "destroy", "room": room}), None)
        .await
        .expect("destroyed");
    let r = handle.message(exists, None).await.expect("exists");
    assert_eq!(r.data["exists"], false);
    handle.detach().await.expect("detached");
}

#[tokio::test]
async fn janus_gone_ends_the_session_and_fails_what_waits() {
    let Some(mut janus) = start().await else {
        return;
    };
    let session = Session::connect(&janus.url, None).await.expect("a session");
    let handle = session
        .attach("janus.plugin.videoroom")
        .await
        .expect("attached");
    janus.child.kill().expect("kill");
    let _ = janus.child.wait();
    tokio::time::timeout(Duration::from_secs(5), session.closed())
        .await
        .expect("the session sees Janus go");
    let r = handle.message(json!({"request": "list"}), None).await;
    assert!(matches!(r, Err(Error::Gone)), "{r:?}");
    assert!(Session::connect(&janus.url, None).await.is_err());
}

#[tokio::test]
async fn a_wrong_plugin_is_refused() {
    let Some(janus) = start().await else { return };
    let session = Session::connect(&janus.url, None).await.expect("a session");
    let r = session.attach("janus.plugin.nothing").await;
    assert!(matches!(r, Err(Error::Refused { .. })), "{:?}", r.err());
}

#[tokio::test]
async fn events_janus_sends_unprompted_reach_their_handle() {
    let Some(janus) = start().await else { return };
    let session = Session::connect(&janus.url, None).await.expect("a session");
    let admin = session
        .attach("janus.plugin.videoroom")
        .await
        .expect("attached");
    let room = 77;
    let create = json!({"request": "create", "room": room, "notify_joining": true});
    admin.message(create, None).await.expect("created");
    let join = |display: &str| json!({"request": "join", "ptype": "publisher", "room": room, "display": display});
    // An asynchronous request: acknowledged, then answered by its event.
    let mut ada = session
        .attach("janus.plugin.videoroom")
        .await
        .expect("attached");
    let joined = ada.message(join("Ada"), None).await.expect("joined");
    assert_eq!(joined.data["videoroom"], "joined");
    assert!(joined.data["id"].as_u64().is_some(), "{:?}", joined.data);
    let bob = session
        .attach("janus.plugin.videoroom")
        .await
        .expect("attached");
    bob.message(join("Bob"), None).await.expect("joined");
    // Ada's handle hears of Bob without asking.
    let event = tokio::time::timeout(Duration::from_secs(5), ada.events.recv())
        .await
        .expect("in time")
        .expect("an event");
    assert_eq!(event["sender"], ada.id);
    assert_eq!(
        event.pointer("/plugindata/data/joining/display"),
        Some(&json!("Bob"))
    );
    assert!(bob.events.is_empty(), "nothing for Bob's handle");
}

mod sfu {
    use super::*;
    use relay::sfu::Sfu;

    async fn exists(url: &str, room: u64) -> bool {
        let session = Session::connect(url, None).await.expect("a session");
        let h = session
            .attach("janus.plugin.videoroom")
            .await
            .expect("attached");
        let r = h
            .message(json!({"request": "exists", "room": room}), None)
            .await
            .expect("exists");
        r.data["exists"] == true
    }

    #[tokio::test]
    async fn one_videoroom_room_per_room_made_on_need_and_destroyed_on_release() {
        let Some(janus) = start().await else { return };
        let sfu = Sfu::new(janus.url.clone(), None);
        let a = sfu.room("alpha").await.expect("a room");
        assert_eq!(sfu.room("alpha").await.expect("the same room"), a);
        let b = sfu.room("beta").await.expect("another room");
        assert_ne!(a, b);
        assert!(exists(&janus.url, a).await && exists(&janus.url, b).await);
        sfu.release("alpha").await;
        assert!(!exists(&janus.url, a).await, "released");
        assert!(exists(&janus.url, b).await, "the other stays");
        sfu.release("alpha").await; // twice: nothing happens
    }

    #[tokio::test]
    async fn janus_down_fails_at_once_and_a_restarted_janus_is_used_again() {
        let Some(mut janus) = start().await else {
            return;
        };
        let sfu = Sfu::new(janus.url.clone(), None);
        sfu.room("alpha").await.expect("a room");
        assert!(sfu.is_up().await);
        janus.child.kill().expect("kill");
        let _ = janus.child.wait();
        // The session notices; calls fail quickly, without waiting on a dead socket.
        for _ in 0..100 {
            if !sfu.is_up().await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!sfu.is_up().await);
        let t = std::time::Instant::now();
        assert!(sfu.room("alpha").await.is_err());
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // Back on the same port: a new session, and the room made anew in it.
        let again = restart(&mut janus).await;
        let mut room = None;
        for _ in 0..50 {
            if let Ok(id) = sfu.room("alpha").await {
                room = Some(id);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let room = room.expect("the room again, once Janus is back");
        assert!(exists(&again, room).await);
    }
}

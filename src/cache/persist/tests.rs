//! The file store and the lock across real processes: crash safety, concurrent
//! read-modify-writes, lock timeouts. Children are this test binary run again with
//! `--exact {CHILD_TEST} --nocapture` and [`ROLE`] set on the child's command only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::error::PersistErrorKind;
use super::file::{FileStore, temp_files};
use super::lock::CrossProcessLock;

/// The environment variables a child reads (set on its `Command` only).
const ROLE: &str = "AZURE_CREDENTIALS_PERSIST_TEST_ROLE";
const PATH: &str = "AZURE_CREDENTIALS_PERSIST_TEST_PATH";
const ID: &str = "AZURE_CREDENTIALS_PERSIST_TEST_ID";
const CHILD_TEST: &str = "cache::persist::tests::child_process_entry_point";

const CHILDREN: usize = 6;
const CYCLES: usize = 20;
/// Lock waits of the children: long, since six processes on two shared cores take turns.
const CHILD_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// An empty directory of this test process's own under the target directory's `tmp/`
/// (`CARGO_TARGET_TMPDIR` exists only for integration tests): `persist-{pid}-{name}`.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let target_tmp = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("tmp")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = target_tmp.join(format!("persist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lock_path(cache: &Path) -> PathBuf {
    let mut name = cache.file_name().unwrap().to_os_string();
    name.push(".lockfile");
    cache.with_file_name(name)
}

fn child(role: &str, path: &Path, id: usize) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .env(ID, id.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// A child process that is killed if the test fails before it ends (a writer never ends).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a child does; without [`ROLE`] (a normal test run) nothing.
#[test]
fn child_process_entry_point() {
    #[allow(clippy::disallowed_methods)] // the parent's marker, set on this process only
    let (Ok(role), Ok(path), Ok(id)) =
        (std::env::var(ROLE), std::env::var(PATH), std::env::var(ID))
    else {
        return;
    };
    let path = PathBuf::from(path);
    let id: usize = id.parse().unwrap();
    match role.as_str() {
        "writer" => writer_child(&path, id),
        "read-modify-write" => read_modify_write_child(&path, id),
        "holder" => holder_child(&path),
        other => panic!("unknown role {other}"),
    }
}

/// Version `version` of round `round`'s cache: about 1 MiB, its header naming both, and a body
/// that differs from every other version's, so a mix of two versions cannot pass for one.
fn version_bytes(round: usize, version: usize) -> Vec<u8> {
    let mut bytes = format!("{round} {version}\n").into_bytes();
    let fill = b'a' + u8::try_from((round * 7 + version) % 26).unwrap();
    bytes.resize(bytes.len() + 1024 * 1024 + version % 4096, fill);
    bytes
}

/// Writes versions 0, 1, 2, ... of round `round` until it is killed.
fn writer_child(path: &Path, round: usize) -> ! {
    let store = FileStore::new(path.to_path_buf());
    for version in 0.. {
        store.write(&version_bytes(round, version)).unwrap();
    }
    unreachable!()
}

/// The version the cache file holds now, checked to be exactly one complete version.
#[cfg(unix)]
fn complete_version(store: &FileStore) -> Option<(usize, usize)> {
    let bytes = store.read().unwrap()?;
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let header = std::str::from_utf8(&bytes[..header_end]).unwrap();
    let (round, version) = header.split_once(' ').unwrap();
    let (round, version) = (round.parse().unwrap(), version.parse().unwrap());
    assert!(
        bytes == version_bytes(round, version),
        "the file is not exactly version {version} of round {round} ({} bytes)",
        bytes.len()
    );
    Some((round, version))
}

#[cfg(unix)]
fn wait_for_version(store: &FileStore, round: usize, at_least: usize) {
    // Polls the file the child writes; the child makes progress, so this ends.
    loop {
        if let Some((r, v)) = complete_version(store)
            && r == round
            && v >= at_least
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Unix only: it reads the file while the writer replaces it without the lock, and Windows
/// (Wine, and Windows before 10's POSIX rename semantics) refuses to rename over a file another
/// process has open; the cache itself only reads and writes under the lock.
#[cfg(unix)]
#[test]
fn a_writer_killed_mid_write_leaves_one_complete_version_and_the_next_write_cleans_its_temp() {
    let dir = scratch_dir("crash");
    let path = dir.join("msal.cache");
    let store = FileStore::new(path.clone());
    // Kill points: right after a version lands, and a few milliseconds into later writes.
    let delays_ms = [0, 1, 2, 3, 5, 8];
    for (round, delay) in delays_ms.into_iter().enumerate() {
        let mut writer = KillOnDrop(child("writer", &path, round).spawn().unwrap());
        wait_for_version(&store, round, 1 + round % 3);
        std::thread::sleep(Duration::from_millis(delay));
        writer.0.kill().unwrap();
        let status = writer.0.wait().unwrap();
        assert!(!status.success(), "the writer ended on its own: {status}");

        let (seen_round, _) = complete_version(&store).expect("the cache file is gone");
        assert_eq!(seen_round, round);
        // At most the killed writer's one temp: the child's first write removed the last round's.
        let temps = temp_files(&path);
        assert!(temps.len() <= 1, "temp files pile up: {temps:?}");
    }
    store.write(b"after").unwrap();
    assert_eq!(store.read().unwrap().unwrap(), b"after");
    assert_eq!(temp_files(&path), Vec::<PathBuf>::new());
}

/// Adds `"{id}-{i}": true` for i in 0..CYCLES, each under the lock.
fn read_modify_write_child(path: &Path, id: usize) {
    let store = FileStore::new(path.to_path_buf());
    for i in 0..CYCLES {
        let _lock = CrossProcessLock::acquire(&lock_path(path), CHILD_LOCK_TIMEOUT).unwrap();
        let mut map: serde_json::Map<String, serde_json::Value> = match store.read().unwrap() {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap(),
            None => serde_json::Map::new(),
        };
        map.insert(format!("{id}-{i}"), serde_json::Value::Bool(true));
        store
            .write(&serde_json::to_vec(&serde_json::Value::Object(map)).unwrap())
            .unwrap();
    }
}

#[test]
fn six_processes_read_modify_write_under_the_lock_and_no_entry_is_lost() {
    let dir = scratch_dir("multi-process");
    let path = dir.join("msal.cache");
    let children: Vec<KillOnDrop> = (0..CHILDREN)
        .map(|id| KillOnDrop(child("read-modify-write", &path, id).spawn().unwrap()))
        .collect();
    for mut child in children {
        let status = child.0.wait().unwrap();
        assert!(status.success(), "a child failed: {status}");
    }
    let bytes = FileStore::new(path.clone()).read().unwrap().unwrap();
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    for id in 0..CHILDREN {
        for i in 0..CYCLES {
            assert_eq!(
                map.get(&format!("{id}-{i}")),
                Some(&serde_json::Value::Bool(true)),
                "entry {id}-{i} was lost"
            );
        }
    }
    assert_eq!(map.len(), CHILDREN * CYCLES);
    assert_eq!(temp_files(&path), Vec::<PathBuf>::new());
}

/// What the holder prints once it holds the lock (libtest may print on the same line before).
const HOLDER_LOCKED: &str = "persist-test-holder-locked";

/// Takes the lock, prints [`HOLDER_LOCKED`], and holds it until its stdin closes.
fn holder_child(path: &Path) {
    let _lock = CrossProcessLock::acquire(&lock_path(path), CHILD_LOCK_TIMEOUT).unwrap();
    let mut out = std::io::stdout();
    let _ = std::io::Write::write_all(&mut out, format!("{HOLDER_LOCKED}\n").as_bytes());
    let _ = std::io::Write::flush(&mut out);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
}

#[test]
fn a_lock_held_by_another_process_times_out_and_is_taken_once_released() {
    let dir = scratch_dir("lock-timeout");
    let path = dir.join("msal.cache");
    let mut holder = KillOnDrop(
        child("holder", &path, 0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(holder.0.stdout.take().unwrap()).lines();
    let locked = stdout
        .by_ref()
        .map(|line| line.unwrap())
        .any(|line| line.contains(HOLDER_LOCKED));
    assert!(locked, "the holder never took the lock");

    let error = CrossProcessLock::acquire(&lock_path(&path), Duration::from_millis(200))
        .expect_err("the lock was taken while another process held it");
    assert_eq!(error.kind(), PersistErrorKind::LockTimeout);
    let message = error.to_string();
    assert!(message.contains("msal.cache.lockfile"), "{message}");
    assert!(message.contains("another process holds"), "{message}");

    drop(holder.0.stdin.take());
    // Read the rest, so the holder's last lines do not meet a closed pipe.
    stdout.for_each(drop);
    assert!(holder.0.wait().unwrap().success());
    let lock = CrossProcessLock::acquire(&lock_path(&path), Duration::from_secs(10)).unwrap();
    assert_eq!(lock.path(), lock_path(&path));
}

//! The outbox file is the path given, whatever its name: SQLite's special names (`:memory:`,
//! the empty name) are refused, and a name that looks like a URI is a file of that name, not
//! a database somewhere else created with the process's default mode. Alone in its own test
//! binary: it changes the working directory.

use freight_outbox::Outbox;
use serde_json::json;

#[test]
fn the_path_is_a_file_whatever_its_name() {
    for special in ["", ":memory:"] {
        let err = Outbox::open(special).err().expect(special);
        assert!(err.0.contains("file path"), "{}", err.0);
    }
    let dir = std::env::temp_dir().join(format!("freight-outbox-paths-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let t = 1_795_392_000;
    let event = json!({"event_name": "Lead", "event_time": t, "action_source": "email",
                       "event_id": "lead-1", "user_data": {"em": "a@example.com"}});
    {
        let outbox = Outbox::open("file:uri.db?mode=memory").unwrap();
        assert_eq!(outbox.enqueue("shop-0", &[event], t).unwrap().stored, 1);
    }
    let reopened = Outbox::open("file:uri.db?mode=memory").unwrap();
    assert_eq!(
        reopened.stats(t).unwrap().pending,
        1,
        "kept across a reopen"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("file:uri.db?mode=memory")),
        "{names:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.join("file:uri.db?mode=memory")).unwrap();
        assert!(meta.len() > 0);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    drop(reopened);
    std::env::set_current_dir(std::env::temp_dir()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_link_to_a_missing_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("freight-outbox-link-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("outbox.db");
    std::os::unix::fs::symlink(dir.join("target.db"), &link).unwrap();
    let err = Outbox::open(&link)
        .err()
        .expect("a dangling link is refused");
    assert!(err.0.contains("symbolic link"), "{}", err.0);
    assert!(
        !dir.join("target.db").exists(),
        "nothing created with the default mode"
    );
    // A link to an existing outbox is that outbox.
    drop(Outbox::open(dir.join("target.db")).unwrap());
    assert!(Outbox::open(&link).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

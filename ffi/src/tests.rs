//! The boundary from Rust: the header is fresh, statuses and out-parameters follow the
//! conventions, and random input never crashes (the C suite does the same from C).

use super::*;
use std::ffi::CStr;

fn last_error() -> String {
    // SAFETY: NULL asks for the size; then a buffer of that size plus the NUL.
    let n = unsafe { freight_last_error_message(ptr::null_mut(), 0) };
    let mut buf = vec![0 as c_char; n + 1];
    // SAFETY: `buf` has n + 1 writable bytes.
    let m = unsafe { freight_last_error_message(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(m, n);
    // SAFETY: NUL-terminated by freight_last_error_message.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn take(s: *mut c_char) -> String {
    assert!(!s.is_null());
    // SAFETY: an owned string from this library.
    let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    // SAFETY: freed once.
    unsafe { freight_string_free(s) };
    text
}

fn normalize_call(field: &[u8], value: &[u8]) -> (freight_result, Option<String>) {
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: valid slices and a writable out-parameter.
    let r = unsafe {
        freight_normalize(
            field.as_ptr().cast(),
            field.len(),
            value.as_ptr().cast(),
            value.len(),
            ptr::null(),
            0,
            &mut out,
        )
    };
    let text = (r == freight_result::Ok).then(|| take(out));
    if r != freight_result::Ok {
        assert!(out.is_null(), "out-parameters are written only on success");
    }
    (r, text)
}

#[test]
fn header_is_fresh() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let version = env!("CARGO_PKG_VERSION");
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    // The crate's version, so that a version bump without a regenerated header fails here.
    config.after_includes = Some(format!(
        "\n/*\n The version of the library this header comes with: freight_version() returns the \
         same.\n */\n#define FREIGHT_VERSION \"{version}\""
    ));
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = dir.join("../include/freight.h");
    if std::env::var_os("FREIGHT_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/freight.h is stale: run FREIGHT_BLESS=1 cargo test -p freight-ffi header"
    );
    assert!(
        committed.ends_with(b"\n"),
        "PHP's FFI::cdef needs a final newline"
    );
    let text = String::from_utf8(committed).unwrap();
    assert!(
        !text.contains("extern \"C\""),
        "PHP cannot parse extern \"C\" blocks"
    );
    assert!(text.contains(&format!("#define FREIGHT_VERSION \"{version}\"\n")));
    // SAFETY: a static NUL-terminated string.
    let lib = unsafe { CStr::from_ptr(freight_version()) }
        .to_str()
        .unwrap();
    assert_eq!(lib, version, "the library reports the crate's version");
}

#[test]
fn normalize_and_errors() {
    let (r, out) = normalize_call(b"em", b" A@B.co ");
    assert_eq!(r, freight_result::Ok);
    let v: Value = serde_json::from_str(&out.unwrap()).unwrap();
    assert_eq!(v["normalized"], "a@b.co");
    assert_eq!(v["hash"], freight_core::hash::sha256_hex("a@b.co"));
    assert_eq!(last_error(), "");

    let (r, _) = normalize_call(b"em", b"secret-person-at-nowhere");
    assert_eq!(r, freight_result::InvalidValue);
    let e = last_error();
    assert!(e.starts_with("invalid_email"), "{e}");
    assert!(!e.contains("secret-person"), "the value never appears: {e}");

    assert_eq!(
        normalize_call(b"zz", b"x").0,
        freight_result::InvalidArgument
    );
    assert_eq!(
        normalize_call(b"em", b"\xff\xfe").0,
        freight_result::InvalidUtf8
    );
    // SAFETY: NULL pointers are checked, not dereferenced.
    let r = unsafe {
        freight_normalize(
            ptr::null(),
            0,
            ptr::null(),
            0,
            ptr::null(),
            0,
            ptr::null_mut(),
        )
    };
    assert_eq!(r, freight_result::NullArgument);
    // SAFETY: a static string.
    let name = unsafe { CStr::from_ptr(freight_result_name(r as i32)) };
    assert_eq!(name.to_str().unwrap(), "FREIGHT_RESULT_NULL_ARGUMENT");
    // SAFETY: a static string.
    let unknown = unsafe { CStr::from_ptr(freight_result_name(12345)) };
    assert_eq!(unknown.to_str().unwrap(), "FREIGHT_RESULT_UNKNOWN");
    // snprintf semantics with a short buffer.
    assert_eq!(
        normalize_call(b"zz", b"x").0,
        freight_result::InvalidArgument
    );
    let mut small = [1 as c_char; 4];
    // SAFETY: 4 writable bytes.
    let n = unsafe { freight_last_error_message(small.as_mut_ptr(), small.len()) };
    assert!(n > 3);
    assert_eq!(small[3], 0);
}

#[test]
fn prepare_send_and_free() {
    let sb = freight_sandbox::Sandbox::start(freight_sandbox::SandboxConfig::with_token("T0K3N"))
        .unwrap();
    let config = format!(r#"{{"graph_url":"{}","timeout_ms":2000}}"#, sb.url());
    let mut client: *mut freight_client = ptr::null_mut();
    // SAFETY: valid slices and out-parameter.
    let r = unsafe { freight_client_new(config.as_ptr().cast(), config.len(), &mut client) };
    assert_eq!(r, freight_result::Ok, "{}", last_error());
    let now = unix_now();
    let events = format!(
        r#"[{{"event_name":"Lead","event_time":{now},"action_source":"email","user_data":{{"em":"a@b.co"}}}},
            {{"event_name":"Lead","event_time":{now},"action_source":"email","user_data":{{"em":"bad"}}}}]"#
    );
    let dest = r#"{"pixel_id":"42","access_token":"T0K3N"}"#;
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: valid client, slices and out-parameter.
    let r = unsafe {
        freight_client_send(
            client,
            dest.as_ptr().cast(),
            dest.len(),
            events.as_ptr().cast(),
            events.len(),
            &mut out,
        )
    };
    assert_eq!(r, freight_result::Ok, "{}", last_error());
    let report: Value = serde_json::from_str(&take(out)).unwrap();
    assert_eq!(report["counts"]["delivered"], 1);
    assert_eq!(report["counts"]["rejected"], 1);
    assert_eq!(sb.accepted_events().len(), 1);

    let bad_dest = r#"{"pixel_id":"42","access_token":12345678}"#;
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: as above.
    let r = unsafe {
        freight_client_send(
            client,
            bad_dest.as_ptr().cast(),
            bad_dest.len(),
            events.as_ptr().cast(),
            events.len(),
            &mut out,
        )
    };
    assert_eq!(r, freight_result::InvalidDestination);
    assert!(!last_error().contains("12345678"));

    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: as above.
    let r = unsafe {
        freight_client_test_connection(client, dest.as_ptr().cast(), dest.len(), &mut out)
    };
    assert_eq!(r, freight_result::Ok);
    assert!(take(out).contains("\"status\":\"ok\""));
    // SAFETY: freed once; NULL is a no-op.
    unsafe {
        freight_client_free(client);
        freight_client_free(ptr::null_mut());
        freight_string_free(ptr::null_mut());
    }

    let bad = r#"{"graph_url":"http://example.com"}"#;
    let mut c2: *mut freight_client = ptr::null_mut();
    // SAFETY: valid slices and out-parameter.
    let r = unsafe { freight_client_new(bad.as_ptr().cast(), bad.len(), &mut c2) };
    assert_eq!(r, freight_result::InvalidConfig);
    assert!(c2.is_null());
    assert!(last_error().contains("loopback"));
}

#[test]
fn random_input_never_crashes() {
    // A small deterministic generator: thousands of byte strings and JSON-ish documents.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: &[u8] = b"{}[]\":,0123456789abcdefxyz@. -+\\\xc3\xa9\xff\x00\ntruefalsnul";
    let fields: [&[u8]; 6] = [b"em", b"ph", b"db", b"country", b"zz", b""];
    for i in 0..3000 {
        let len = (next() % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let r = normalize_call(fields[i % fields.len()], &bytes).0;
        assert_ne!(r, freight_result::Panic);
        let mut out: *mut c_char = ptr::null_mut();
        let doc = if i % 3 == 0 {
            [b"[".as_slice(), &bytes, b"]"].concat()
        } else {
            bytes.clone()
        };
        // SAFETY: valid slice and out-parameter.
        let r =
            unsafe { freight_prepare(doc.as_ptr().cast(), doc.len(), ptr::null(), 0, 0, &mut out) };
        assert_ne!(r, freight_result::Panic);
        if r == freight_result::Ok {
            take(out);
        } else {
            assert!(out.is_null());
        }
    }
}

#[test]
fn event_id_secret_and_json_shapes_are_checked() {
    let event_id = |secret: *const c_char, secret_len: usize| {
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: valid (pointer, length) pairs but the secret under test, which the function
        // must refuse before reading; a writable out-parameter.
        let r = unsafe {
            freight_event_id(
                secret,
                secret_len,
                c"1".as_ptr(),
                1,
                c"Purchase".as_ptr(),
                8,
                c"order-1".as_ptr(),
                7,
                &mut out,
            )
        };
        let id = (r == freight_result::Ok).then(|| take(out));
        (r, id)
    };
    let s = c"platform-secret";
    let (r, id) = event_id(s.as_ptr(), 15);
    assert_eq!(r, freight_result::Ok);
    assert_eq!(id.unwrap().len(), 36);
    assert_eq!(event_id(ptr::null(), 15).0, freight_result::NullArgument);
    assert_eq!(event_id(s.as_ptr(), 0).0, freight_result::InvalidArgument);
    // A length no object can have is refused, never read.
    assert_eq!(
        event_id(s.as_ptr(), usize::MAX).0,
        freight_result::InvalidArgument
    );
    let e = last_error();
    assert!(
        e.contains("secret") && !e.contains("platform-secret"),
        "{e}"
    );

    // Options and configurations are objects: an array would fill settings by position.
    let mut out: *mut c_char = ptr::null_mut();
    for options in [&b"[\"gb\"]"[..], b"[]", b"\"gb\""] {
        // SAFETY: valid slices and a writable out-parameter.
        let r = unsafe {
            freight_normalize(
                c"ph".as_ptr(),
                2,
                c"07700 900123".as_ptr(),
                12,
                options.as_ptr().cast(),
                options.len(),
                &mut out,
            )
        };
        assert_eq!(r, freight_result::InvalidJson);
        assert!(out.is_null());
        assert!(last_error().contains("must be a JSON object"));
    }
    for config in [&b"[\"http://127.0.0.1:9\"]"[..], b"[]", b"1"] {
        let mut client: *mut freight_client = ptr::null_mut();
        // SAFETY: a valid slice and a writable out-parameter.
        let r = unsafe { freight_client_new(config.as_ptr().cast(), config.len(), &mut client) };
        assert_eq!(r, freight_result::InvalidConfig);
        assert!(client.is_null());
    }
}

/// A client pointer handed to another thread (the client is thread-safe by contract).
struct Shared(*const freight_client);
// SAFETY: freight_client is Sync; the pointer outlives the thread (scoped).
unsafe impl Send for Shared {}

#[test]
fn cancel_stops_a_waiting_send_and_flush_until_lifted() {
    use freight_sandbox::{Fault, FaultKind, Sandbox, SandboxConfig};
    let sb = Sandbox::start(SandboxConfig::with_token("T0K3N")).unwrap();
    // Meta asks for 30 s before the next try, which the client's budget allows.
    sb.push_fault(Fault::times(
        FaultKind::Http429 {
            retry_after: Some(30),
            graph_body: true,
        },
        2,
    ));
    let config = format!(r#"{{"graph_url":"{}","timeout_ms":2000}}"#, sb.url());
    let mut client: *mut freight_client = ptr::null_mut();
    // SAFETY: valid slices and out-parameter.
    let r = unsafe { freight_client_new(config.as_ptr().cast(), config.len(), &mut client) };
    assert_eq!(r, freight_result::Ok, "{}", last_error());
    let now = unix_now();
    let events = format!(
        r#"[{{"event_name":"Lead","event_time":{now},"action_source":"email","user_data":{{"em":"a@b.co"}}}}]"#
    );
    let dest = r#"{"pixel_id":"42","access_token":"T0K3N"}"#;
    let send = || {
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: valid client, slices and out-parameter.
        let r = unsafe {
            freight_client_send(
                client,
                dest.as_ptr().cast(),
                dest.len(),
                events.as_ptr().cast(),
                events.len(),
                &mut out,
            )
        };
        assert_eq!(r, freight_result::Ok, "{}", last_error());
        serde_json::from_str::<Value>(&take(out)).unwrap()
    };
    let started = std::time::Instant::now();
    let shared = Shared(client);
    let report = std::thread::scope(|s| {
        s.spawn(move || {
            let shared = shared;
            std::thread::sleep(std::time::Duration::from_millis(300));
            // SAFETY: a live client.
            unsafe { freight_client_cancel(shared.0, 1) };
        });
        send()
    });
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(report["counts"]["failed"], 1, "{report}");
    assert_eq!(sb.requests().len(), 1, "no retry after the cancel");
    // Still set: the next send stops before its first request.
    let report = send();
    assert_eq!(
        report["failed"][0]["error"]["kind"], "cancelled",
        "{report}"
    );
    assert_eq!(report["failed"][0]["attempts"], 0);
    assert_eq!(sb.requests().len(), 1);
    // An outbox flush with the flag set sends nothing and keeps its events.
    let path = std::env::temp_dir().join(format!("freight-ffi-cancel-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let path_text = path.to_str().unwrap();
    let mut outbox: *mut freight_outbox = ptr::null_mut();
    // SAFETY: valid slices and out-parameter.
    let r = unsafe {
        freight_outbox_open(
            path_text.as_ptr().cast(),
            path_text.len(),
            ptr::null(),
            0,
            &mut outbox,
        )
    };
    assert_eq!(r, freight_result::Ok, "{}", last_error());
    let key = "shop";
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: valid outbox, slices and out-parameter.
    let r = unsafe {
        freight_outbox_enqueue(
            outbox,
            key.as_ptr().cast(),
            key.len(),
            events.as_ptr().cast(),
            events.len(),
            &mut out,
        )
    };
    assert_eq!(r, freight_result::Ok, "{}", last_error());
    take(out);
    let dests = format!(r#"{{"shop":{dest}}}"#);
    let flush = || {
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: valid outbox, client, slices and out-parameter.
        let r = unsafe {
            freight_outbox_flush(outbox, client, dests.as_ptr().cast(), dests.len(), &mut out)
        };
        assert_eq!(r, freight_result::Ok, "{}", last_error());
        serde_json::from_str::<Value>(&take(out)).unwrap()
    };
    let report = flush();
    assert_eq!(report["interrupted"], true, "{report}");
    assert_eq!(report["requests"], 0);
    // Lifted: both go out again.
    sb.reset();
    // SAFETY: a live client; NULL is a no-op.
    unsafe {
        freight_client_cancel(client, 0);
        freight_client_cancel(ptr::null(), 1);
    }
    assert_eq!(send()["counts"]["delivered"], 1);
    let report = flush();
    assert_eq!(
        (
            report["delivered"].as_u64(),
            report["interrupted"].as_bool()
        ),
        (Some(1), Some(false)),
        "{report}"
    );
    // SAFETY: freed once.
    unsafe {
        freight_outbox_free(outbox);
        freight_client_free(client);
    }
    let _ = std::fs::remove_file(&path);
}

//! Conformance with Meta's official implementations.
//!
//! `tests/fixtures/official-sdk-vectors.jsonl` holds 2,044 vectors from the unit tests of
//! Meta's Python and PHP Business SDKs, the Node SDK and the parameter builder. Freight
//! agrees with every vector except those listed in
//! `tests/fixtures/official-sdk-differences.jsonl`, each with Freight's own outcome and the
//! id of a rule documented in `docs/normalization.md`. This test fails when a vector
//! neither matches nor is listed, when a listed vector's outcome changes, when a listed
//! vector starts matching (stale entry), or when a rule id is not documented.
//!
//! Regenerate the outcome dump with `FREIGHT_VECTORS_DUMP=/tmp/outcomes.jsonl cargo test
//! --test official_vectors`, then `python3 tools/classify_differences.py`.

use freight::normalize::{normalize, Field, NormalizeOptions};
use freight::prepare::{prepare, PrepareOptions};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// 2026-11-23T00:00:00Z: a fixed clock so date-of-birth checks are reproducible.
const NOW: i64 = 1_795_392_000;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn read_jsonl(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join(name)).expect("fixture readable");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
        .collect()
}

/// A vector's identity: field, input and the function it exercised.
fn key(v: &Value) -> String {
    format!("{}|{}|{}", v["field"], v["input"], v["function"])
}

/// The official outcome: `error`, `null`, or the expected string.
fn expected(v: &Value) -> Value {
    if v.get("error").is_some_and(|e| e == true) {
        return json!("error");
    }
    match &v["expected"] {
        Value::Null => json!("null"),
        // Freight never adds a parameter-builder appendix to values it hashes itself, so
        // only the digest of an official `<digest>.<appendix>` output is compared.
        Value::String(s) if s.len() > 65 && s.as_bytes()[64] == b'.' && !is_passthrough(v) => {
            json!(s[..64])
        }
        other => other.clone(),
    }
}

/// True when the input itself is already a hash (the appendix then belongs to the input).
fn is_passthrough(v: &Value) -> bool {
    v["input"].as_str().is_some_and(|s| {
        s.trim().len() >= 64 && s.trim()[..64].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn field_of(name: &str) -> Option<Field> {
    match name {
        "fn/ln" => Some(Field::Fn),
        other => Field::from_key(other),
    }
}

/// Freight's outcome for a vector, in the same shape as [`expected`].
fn freight(v: &Value) -> Value {
    let field_name = v["field"].as_str().unwrap();
    let stage = v["stage"].as_str().unwrap_or("");
    let input = &v["input"];
    match field_name {
        "appsecret_proof" => {
            let secret = input["appsecret"].as_str().unwrap();
            let token = input["access_token"].as_str().unwrap();
            return json!(freight::hash::appsecret_proof(secret, token));
        }
        "currency" => {
            let s = input.as_str().unwrap_or("");
            return if s.trim().is_empty() {
                json!("null")
            } else if freight::normalize::is_currency(s.trim()) {
                json!(s.trim().to_ascii_uppercase())
            } else {
                json!("error")
            };
        }
        "delivery_category" => {
            return event_outcome(json!({"delivery_category": input}), "delivery_category")
        }
        "lead_id" => {
            return user_data_outcome("lead_id", input);
        }
        _ => {}
    }
    let field = field_of(field_name).unwrap_or_else(|| panic!("unknown field {field_name}"));
    let opts = NormalizeOptions {
        now: Some(NOW),
        ..Default::default()
    };
    if stage == "passthrough" {
        return user_data_outcome(field_name, input);
    }
    let Some(s) = input.as_str() else {
        return if input.is_null() {
            json!("null")
        } else {
            user_data_outcome(field_name, input)
        };
    };
    match normalize(field, s, &opts) {
        Err(_) => json!("error"),
        Ok(None) => json!("null"),
        Ok(Some(n))
            if stage.starts_with("normalized+hashed") || stage.starts_with("passthrough") =>
        {
            json!(n.to_wire(field, &opts))
        }
        Ok(Some(n)) => json!(n.value),
    }
}

fn base_event(user_data: Value, custom_data: Value) -> Value {
    json!({"event_name": "Lead", "event_time": NOW, "action_source": "other",
           "user_data": user_data, "custom_data": custom_data})
}

/// Runs a value through `prepare` inside `user_data` and reports what is sent.
fn user_data_outcome(key: &str, input: &Value) -> Value {
    let ud = json!({key: input, "client_ip_address": "192.0.2.1", "fbp": "fb.1.1700000000000.1"});
    let ev = base_event(ud, json!({}));
    let out = prepare([&ev], &PrepareOptions::default(), NOW);
    let loc = format!("data[0].user_data.{key}");
    if let Some(r) = out.rejected.first() {
        if r.errors.iter().any(|p| p.loc.starts_with(&loc)) {
            return json!("error");
        }
        panic!("unexpected rejection {:?}", r.errors);
    }
    let wire = serde_json::to_value(&out.events[0].event.user_data).unwrap();
    match &wire[key] {
        Value::Null => json!("null"),
        Value::Array(a) if a.len() == 1 => a[0].clone(),
        other => other.clone(),
    }
}

fn event_outcome(custom: Value, key: &str) -> Value {
    let ev = base_event(json!({"em": "a@b.co"}), custom);
    let out = prepare([&ev], &PrepareOptions::default(), NOW);
    if !out.rejected.is_empty() {
        return json!("error");
    }
    let cd = serde_json::to_value(out.events[0].event.custom_data.as_ref().unwrap()).unwrap();
    match &cd[key] {
        Value::Null => json!("null"),
        other => other.clone(),
    }
}

#[test]
fn every_official_vector_matches_or_is_a_documented_difference() {
    let vectors = read_jsonl("official-sdk-vectors.jsonl");
    assert_eq!(
        vectors.len(),
        2044,
        "the shared fixture is copied unchanged"
    );
    let differences = read_jsonl("official-sdk-differences.jsonl");
    let doc = std::fs::read_to_string(fixtures().join("../../docs/normalization.md")).unwrap();

    let mut listed: HashMap<String, &Value> = HashMap::new();
    for d in &differences {
        let rule = d["rule"].as_str().expect("every difference names a rule");
        assert!(
            doc.contains(&format!("`{rule}`")),
            "rule {rule} is not documented in docs/normalization.md"
        );
        assert!(
            listed.insert(key(d), d).is_none(),
            "listed twice: {}",
            key(d)
        );
    }

    let mut dump = Vec::new();
    let mut failures = Vec::new();
    let mut hit = std::collections::HashSet::new();
    for v in &vectors {
        let (exp, got) = (expected(v), freight(v));
        dump.push(
            json!({"field": v["field"], "input": v["input"], "function": v["function"],
                         "sdk": v["sdk"], "expected": exp, "freight": got})
            .to_string(),
        );
        let k = key(v);
        match listed.get(&k) {
            None if exp == got => {}
            None => failures.push(format!(
                "unlisted difference {k}: official {exp}, freight {got}"
            )),
            Some(_) if exp == got => failures.push(format!("stale difference (now matches): {k}")),
            Some(d) if d["freight"] != got => failures.push(format!(
                "listed difference changed {k}: listed {}, now {got}",
                d["freight"]
            )),
            Some(_) => {
                hit.insert(k);
            }
        }
    }
    if let Ok(path) = std::env::var("FREIGHT_VECTORS_DUMP") {
        std::fs::write(path, dump.join("\n") + "\n").unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let orphans: Vec<&String> = listed.keys().filter(|k| !hit.contains(*k)).collect();
    assert!(
        orphans.is_empty(),
        "listed differences without a vector: {orphans:?}"
    );
}

//! The shared fixtures of `tests/fixtures/`, which the C, PHP and Python suites read too,
//! so the four surfaces cannot drift apart.

mod common;
use common::read_jsonl;

use freight::normalize::{normalize, Field, NormalizeOptions};
use freight::prepare::{prepare, PrepareOptions, PreparedEvent, Preparer};
use serde_json::Value;

/// True when every key of `expected` is in `actual` with a matching value.
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (Value::Number(a), Value::Number(e)) => a.as_f64() == e.as_f64(),
        _ => actual == expected,
    }
}

#[test]
fn normalization_fixture() {
    let cases = read_jsonl("normalization.jsonl");
    assert!(cases.len() >= 70);
    for c in &cases {
        let field = Field::from_key(c["field"].as_str().unwrap()).unwrap();
        let input = c["input"].as_str().unwrap();
        let opts: NormalizeOptions = match c.get("options") {
            Some(o) => serde_json::from_value(o.clone()).unwrap(),
            None => NormalizeOptions::default(),
        };
        let got = normalize(field, input, &opts);
        let ctx = format!("{field} {input:?}");
        if let Some(kind) = c.get("error") {
            let e = got.expect_err(&ctx);
            assert_eq!(e.kind.as_str(), kind, "{ctx}");
            continue;
        }
        match got.expect(&ctx) {
            None => assert!(c["normalized"].is_null(), "{ctx} was dropped"),
            Some(n) => {
                assert_eq!(n.value, c["normalized"], "{ctx}");
                assert_eq!(n.to_wire(field, &opts), c["wire"], "{ctx}");
                assert_eq!(
                    n.warning.map(|w| w.as_str()),
                    c["warning"].as_str(),
                    "{ctx}"
                );
            }
        }
    }
}

fn problems(list: &[freight::Problem]) -> Vec<(String, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|p| (p.kind.as_str().to_owned(), p.loc.clone()))
        .collect();
    v.sort();
    v
}

fn expected_problems(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn events_fixture() {
    let cases = read_jsonl("events.jsonl");
    assert!(cases.len() >= 50);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let opts: PrepareOptions = match c.get("options") {
            Some(o) => serde_json::from_value(o.clone()).unwrap(),
            None => PrepareOptions::default(),
        };
        let out = prepare([&c["event"]], &opts, c["now"].as_i64().unwrap());
        assert_eq!(out.events.len() + out.rejected.len(), 1, "{name}");
        let want_errors = expected_problems(&c["errors"]);
        let want_warnings = expected_problems(&c["warnings"]);
        let (errors, warnings) = match (out.events.first(), out.rejected.first()) {
            (Some(e), _) => (Vec::new(), problems(&e.warnings)),
            (_, Some(r)) => (problems(&r.errors), problems(&r.warnings)),
            _ => unreachable!(),
        };
        assert_eq!(errors, want_errors, "errors of {name:?}");
        assert_eq!(warnings, want_warnings, "warnings of {name:?}");
        if let Some(wire) = c.get("wire") {
            let event = serde_json::to_value(&out.events[0].event).unwrap();
            assert!(
                contains(&event, wire),
                "{name:?}: wire {event} lacks {wire}"
            );
        }
        // Messages never echo customer data: no message contains a user_data string.
        for p in out
            .rejected
            .iter()
            .flat_map(|r| r.errors.iter().chain(&r.warnings))
        {
            for s in strings(&c["event"]["user_data"]) {
                if s.len() >= 4 {
                    assert!(!p.msg.contains(&s), "{name:?}: message echoes input {s:?}");
                }
            }
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(m) => m.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// One slot reused by `prepare_into` for every fixture event, in two orders, gives exactly what
/// `prepare_one` gives each: nothing of an earlier event is left in it.
#[test]
fn a_reused_slot_keeps_nothing_of_the_event_before() {
    let mut cases = read_jsonl("events.jsonl");
    assert!(cases.len() >= 50);
    let mut slot = PreparedEvent::default();
    for round in 0..2 {
        for (i, c) in cases.iter().enumerate() {
            let opts: PrepareOptions = match c.get("options") {
                Some(o) => serde_json::from_value(o.clone()).unwrap(),
                None => PrepareOptions::default(),
            };
            let preparer = Preparer::new(&opts, c["now"].as_i64().unwrap());
            let fresh = preparer.prepare_one(&c["event"], i);
            let reused = preparer.prepare_into(&c["event"], i, &mut slot);
            let name = c["name"].as_str().unwrap();
            match (fresh, reused) {
                (Ok(fresh), Ok(())) => assert_eq!(slot, fresh, "round {round}: {name}"),
                (Err(fresh), Err(reused)) => assert_eq!(reused, fresh, "round {round}: {name}"),
                (fresh, reused) => panic!("round {round}: {name}: {fresh:?} vs {reused:?}"),
            }
        }
        cases.reverse();
    }
}

//! A proxy named in the environment (`HTTP_PROXY`, `ALL_PROXY`, …) never sees a request to a
//! loopback Graph URL, which would carry the token in clear text off the machine; requests
//! over TLS still go through it, as a tunnel. Alone in its own test binary: it sets
//! process-wide environment variables.

use freight::client::{Client, ClientConfig};
use freight::destination::Destination;
use freight::retry::RetryPolicy;
use freight_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TOKEN: &str = "EAAB-proxy-test-token";

#[test]
fn env_proxies_are_bypassed_for_loopback_and_tunnel_tls() {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        std::env::set_var(var, &proxy_url);
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    // The proxy records the first line of each connection, then drops it.
    let (seen, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in proxy.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            let _ = seen.send(line);
        }
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let events = [
        json!({"event_name": "Lead", "event_time": now - 10, "action_source": "email",
                         "user_data": {"em": "a@example.com"}}),
    ];
    let dest = Destination::new("1234567890", TOKEN).unwrap();
    let client = |graph_url: String| {
        Client::new(ClientConfig {
            graph_url,
            timeout_ms: 3000,
            retry: RetryPolicy::none(),
            ..ClientConfig::default()
        })
        .unwrap()
    };

    let sb = Sandbox::start(SandboxConfig::with_token(TOKEN)).unwrap();
    let r = client(sb.url()).send(&dest, &events);
    assert_eq!(
        r.counts.delivered,
        1,
        "{:?}",
        r.failed.first().map(|f| &f.error)
    );
    assert_eq!(
        lines.recv_timeout(Duration::from_millis(300)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "a loopback request went to the proxy"
    );
    assert_eq!(sb.requests().len(), 1);
    // Plain http by name is refused: the system (or a proxy) resolves it.
    assert!(Client::new(ClientConfig {
        graph_url: sb.url().replace("127.0.0.1", "localhost"),
        ..ClientConfig::default()
    })
    .is_err());

    // Over TLS the proxy is asked for a tunnel (it refuses here: the send fails).
    let r = client("https://graph.example.invalid".into()).send(&dest, &events);
    assert_eq!(r.counts.failed, 1);
    let line = lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        line.starts_with("CONNECT graph.example.invalid:443 "),
        "{line:?}"
    );
}

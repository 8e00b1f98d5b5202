//! The server's limits and authentication, through the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Env, on_both_backends};

on_both_backends!(
    half_sent_requests_are_closed_while_others_are_served,
    every_route_needs_a_token_with_its_role,
);

/// 300 connections that send half a request and hold it (a slowloris) are
/// closed within the header timeout, and half-sent bodies within the request
/// budget, while `/health` and normal requests keep working.
async fn half_sent_requests_are_closed_while_others_are_served(env: &Env) {
    let server = env.serve_with(&["--header-timeout", "1", "--request-timeout", "2"]);
    env.open("s-1", "owner-s", "Ada", 10);
    let addr = server.addr;
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            let partial = if i % 2 == 0 {
                // Headers never finished.
                "GET /accounts/s-1 HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_owned()
            } else {
                // A body that never comes.
                "POST /accounts/s-1/deposits HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"amo".to_owned()
            };
            stream.write_all(partial.as_bytes()).expect("write");
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .expect("timeout");
            stream
        })
        .collect();
    // Meanwhile the service answers.
    for _ in 0..5 {
        assert_eq!(server.get("/health").await.status, 200);
        let deposit = server
            .post("/accounts/s-1/deposits", &[], &json!({"amount": 1}))
            .await;
        assert_eq!(deposit.status, 201, "{deposit:?}");
    }
    // Every slow connection is answered (503 for the stalled body) or closed,
    // well before the 15 s the test would wait.
    for (i, stream) in slow.iter_mut().enumerate() {
        let mut seen = Vec::new();
        let read = stream.read_to_end(&mut seen);
        assert!(read.is_ok(), "connection {i} was not closed: {read:?}");
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 503") || text.starts_with("HTTP/1.1 408"),
            "connection {i}: {text}"
        );
    }
    assert!(opened.elapsed() < Duration::from_secs(15));
    assert_eq!(env.balance("s-1"), 15, "no half-sent deposit was applied");
}

fn tokens_file(env: &Env) -> (String, String, std::path::PathBuf) {
    let new = |role: &str| env.run(&["tokens", "new", "--role", role]).ok();
    let (teller, operator) = (new("teller"), new("operator"));
    let path = env.data_dir().join("tokens");
    std::fs::write(
        &path,
        format!(
            "# test tokens\n{}\n{}\n",
            teller["line"].as_str().unwrap(),
            operator["line"].as_str().unwrap()
        ),
    )
    .expect("write the tokens file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (
        teller["token"].as_str().unwrap().to_owned(),
        operator["token"].as_str().unwrap().to_owned(),
        path,
    )
}

/// Every route × no token, a wrong token, each role.
async fn every_route_needs_a_token_with_its_role(env: &Env) {
    let (teller, operator, path) = tokens_file(env);
    let server = env.serve_with(&["--tokens-file", path.to_str().unwrap()]);
    let teller_routes: [(&str, &str, Option<serde_json::Value>); 7] = [
        (
            "POST",
            "/accounts",
            Some(json!({"account": "a-1", "owner_id": "o-1", "owner_name": "Ada"})),
        ),
        ("POST", "/accounts/a-1/deposits", Some(json!({"amount": 1}))),
        (
            "POST",
            "/accounts/a-1/withdrawals",
            Some(json!({"amount": 1})),
        ),
        (
            "POST",
            "/transfers",
            Some(json!({"from": "a-1", "to": "a-2", "amount": 1})),
        ),
        ("GET", "/accounts/a-1", None),
        ("GET", "/accounts/a-1/history", None),
        ("GET", "/search?q=ada", None),
    ];
    let operator_routes: [(&str, &str, Option<serde_json::Value>); 2] =
        [("DELETE", "/owners/o-9", None), ("GET", "/metrics", None)];
    let call = |method: &'static str,
                path: &'static str,
                body: Option<serde_json::Value>,
                token: Option<String>| {
        let server = &server;
        async move {
            let auth = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("Authorization", a.as_str())).collect();
            let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
            server
                .request(method, path, &headers, bytes.as_deref())
                .await
        }
    };
    for (routes, role) in [
        (&teller_routes[..], "teller"),
        (&operator_routes[..], "operator"),
    ] {
        for (method, path, body) in routes {
            for (who, token) in [
                ("none", None),
                ("wrong", Some("not-a-token".to_owned())),
                ("teller", Some(teller.clone())),
                ("operator", Some(operator.clone())),
            ] {
                let answer = call(method, path, body.clone(), token).await;
                let expected = match who {
                    "none" | "wrong" => Some(401),
                    _ if who == role => None,
                    _ => Some(403),
                };
                match expected {
                    Some(status) => {
                        assert_eq!(
                            answer.status, status,
                            "{method} {path} as {who}: {answer:?}"
                        );
                        let kind = if status == 401 {
                            "unauthenticated"
                        } else {
                            "forbidden"
                        };
                        assert_eq!(answer.json()["error"], kind, "{method} {path} as {who}");
                        if status == 401 {
                            assert!(
                                answer.headers.contains("www-authenticate: bearer"),
                                "{answer:?}"
                            );
                        }
                    }
                    None => assert!(
                        !matches!(answer.status, 401 | 403),
                        "{method} {path} as {who}: {answer:?}"
                    ),
                }
            }
        }
    }
    // /health stays open, for load balancers.
    assert_eq!(call("GET", "/health", None, None).await.status, 200);
}

/// Without tokens the server listens on loopback only, and says so; a
/// tokens file that others can read is refused.
#[tokio::test(flavor = "multi_thread")]
async fn without_tokens_only_loopback_and_an_open_tokens_file_is_refused() {
    let env = Env::embedded();
    let refused = env.run(&["serve", "--addr", "0.0.0.0:0"]);
    let message = refused.fails("config", 78);
    assert!(message.contains("without authentication"), "{message}");
    let (_, _, path) = tokens_file(&env);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let refused = env.run(&["serve", "--tokens-file", path.to_str().unwrap()]);
    let message = refused.fails("config", 78);
    assert!(message.contains("mode 644"), "{message}");
}

/// Past `--max-in-flight`, requests are refused at once (503 `overloaded`,
/// `Retry-After`) instead of queueing behind the ones in progress.
#[tokio::test(flavor = "multi_thread")]
async fn requests_past_the_in_flight_cap_are_refused_at_once() {
    let env = Env::embedded();
    env.open("f-1", "owner-f", "Ada", 10);
    let server = env.serve_with(&["--max-in-flight", "1", "--request-timeout", "60"]);
    // A request whose body never comes holds the one slot.
    let mut holder = TcpStream::connect(server.addr).expect("connect");
    holder
        .write_all(b"POST /accounts/f-1/deposits HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{")
        .expect("write");
    // Once the server has it in hand (a loaded machine may take a moment),
    // the next request is refused at once.
    let mut refused = server.get("/accounts/f-1").await;
    for _ in 0..200 {
        if refused.status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        refused = server.get("/accounts/f-1").await;
    }
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.json()["error"], "overloaded");
    assert!(refused.headers.contains("retry-after: 1"), "{refused:?}");
    // The slot comes back when the holder goes.
    drop(holder);
    let mut served = server.get("/accounts/f-1").await;
    for _ in 0..50 {
        if served.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        served = server.get("/accounts/f-1").await;
    }
    assert_eq!(served.status, 200, "{served:?}");
}

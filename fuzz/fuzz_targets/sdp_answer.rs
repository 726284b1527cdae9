//! SDP offer → answer → re-offer → release, against a small port pool.
//!
//! Properties: no panic; every accepted stream holds its own allocated port; our answers
//! are SDP we can parse ourselves; and after `release_ports` the pool is full again, whatever
//! the offers did (a leaked port is a recorder that slowly stops taking calls).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_recorder::sdp::{
    AnswerConfig, MediaSession, PortPool, SrtpPolicy, Update, answer_offer, answer_reoffer,
    parse_offer, release_ports,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Never in a well-formed SDP body, so it can separate the two offers.
const SEPARATOR: u8 = 0xFF;

fuzz_target!(|data: &[u8]| {
    let (first, second) = offers(data);
    let cfg = AnswerConfig {
        media_ip: if data.len() % 2 == 0 {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))
        } else {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        },
        accept_video: data.len() % 3 == 0,
        // Every policy, so SRTP offers are both taken and refused.
        srtp: match data.len() % 3 {
            0 => SrtpPolicy::Optional,
            1 => SrtpPolicy::Required,
            _ => SrtpPolicy::Off,
        },
    };
    // Few slots, so that exhaustion in the middle of an offer is reached.
    let mut pool = PortPool::new(20000, 20015);
    let capacity = pool.capacity();
    // Seeded like the UAS's generator: a crash reproduces from its input alone.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);

    let Ok(offer) = parse_offer(&first) else {
        return;
    };
    let mut session = match answer_offer(&offer, &cfg, &mut pool, 7, &mut rng) {
        Ok(s) => s,
        Err(_) => {
            assert_eq!(pool.available(), capacity, "a refused offer kept ports");
            return;
        }
    };
    check_session(&session, &pool);

    if let Ok(reoffer) = parse_offer(&second) {
        let before = pool.available();
        match answer_reoffer(&session, &reoffer, &cfg, &mut pool, &mut rng) {
            Ok(Update::Changed(next)) => session = next,
            Ok(Update::Unchanged) => assert_eq!(pool.available(), before),
            Err(_) => assert_eq!(
                pool.available(),
                before,
                "a refused re-offer changed the pool"
            ),
        }
        check_session(&session, &pool);
    }

    release_ports(&session, &mut pool);
    assert_eq!(pool.available(), capacity, "ports leaked");
});

/// The second offer follows the separator; without one it is the first with a new o=
/// version and the directions flipped, the shape of a pause/resume re-INVITE.
fn offers(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if let Some(at) = data.iter().position(|&b| b == SEPARATOR) {
        return (data[..at].to_vec(), data[at + 1..].to_vec());
    }
    let text = String::from_utf8_lossy(data);
    let second: String = text
        .lines()
        .map(|line| {
            if let Some(rest) = line.strip_prefix("o=") {
                let mut f: Vec<String> = rest.split(' ').map(str::to_string).collect();
                if let Some(v) = f.get_mut(2) {
                    *v = v
                        .parse::<u64>()
                        .map_or_else(|_| "2".into(), |n| n.wrapping_add(1).to_string());
                }
                format!("o={}", f.join(" "))
            } else {
                line.replace("sendonly", "inactive")
                    .replace("sendrecv", "sendonly")
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    (data.to_vec(), second.into_bytes())
}

fn check_session(session: &MediaSession, pool: &PortPool) {
    let mut ports: Vec<u16> = session
        .streams
        .iter()
        .filter(|s| s.accepted)
        .map(|s| s.local_port)
        .collect();
    for &p in &ports {
        assert!(
            pool.is_allocated(p),
            "accepted stream on unallocated port {p}"
        );
    }
    let n = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), n, "two streams share a port");
    assert_eq!(
        pool.capacity() - pool.available(),
        n,
        "pool and session disagree on the ports in use"
    );
    assert!(
        parse_offer(session.answer_sdp.as_bytes()).is_ok(),
        "our own answer does not parse:\n{}",
        session.answer_sdp
    );
}

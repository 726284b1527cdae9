//! Server transaction matching (RFC 3261 §17.2.3), response flows, the SPEC §3 dialog
//! tolerances, glare and the INVITE without SDP, on the virtual clock of `tests.rs`.

use super::test_harness::{Call, Harness, T1, header, sdp};
use super::*;
use crate::sip::Transport;

/// `msg` with its top Via replaced.
fn via(msg: &str, value: &str) -> String {
    let start = msg.find("Via: ").expect("Via") + "Via: ".len();
    let end = start + msg[start..].find("\r\n").expect("CRLF");
    format!("{}{value}{}", &msg[..start], &msg[end..])
}

/// `msg` with its CSeq line replaced.
fn cseq(msg: &str, value: &str) -> String {
    let start = msg.find("CSeq: ").expect("CSeq") + "CSeq: ".len();
    let end = start + msg[start..].find("\r\n").expect("CRLF");
    format!("{}{value}{}", &msg[..start], &msg[end..])
}

/// `msg` with the `;tag=..` of its To removed.
fn untagged_to(msg: &str, tag: &str) -> String {
    msg.replacen(
        &format!("<sip:record@127.0.0.1>;tag={tag}"),
        "<sip:record@127.0.0.1>",
        1,
    )
}

/// A response to a request the recorder sent.
fn answer(req: &SipRequest, code: u16) -> String {
    let vias: String = req
        .vias
        .iter()
        .map(|v| format!("Via: {}\r\n", v.raw))
        .collect();
    format!(
        "SIP/2.0 {code} Whatever\r\n{vias}From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n\
         Content-Length: 0\r\n\r\n",
        req.from.raw,
        req.to.raw,
        req.call_id,
        req.cseq,
        req.cseq_method.as_str()
    )
}

/// Requests the recorder sent, one per transaction (UDP retransmissions left out).
fn distinct_requests(h: &mut Harness) -> Vec<SipRequest> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for r in h.requests() {
        let branch = r.branch().map(str::to_string);
        if !seen.contains(&branch) {
            seen.push(branch);
            out.push(r);
        }
    }
    out
}

fn tolerance(h: &Harness, t: Tolerance) -> u64 {
    h.uas
        .stats()
        .tolerances
        .get(t.as_str())
        .copied()
        .unwrap_or(0)
}

fn prepare_id(h: &mut Harness) -> String {
    match h.take_events().as_slice() {
        [RecordingEvent::Prepare { recording_id, .. }] => recording_id.clone(),
        other => panic!("expected Prepare, got {other:?}"),
    }
}

const OTHER_HOST: &str = "SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKsame;rport";
const OTHER_PORT: &str = "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKsame;rport";

#[test]
fn same_branch_from_another_sent_by_host_or_port_is_another_transaction() {
    let mut h = Harness::new();
    let options = via(
        &Call::new(1).request("OPTIONS", "same", "", None),
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKsame;rport",
    );
    h.input(&options);
    let first = h.take_sent();
    assert_eq!(first.len(), 1);
    // A true retransmission: the cached response, byte for byte.
    h.input(&options);
    assert_eq!(h.take_sent(), first);
    // Same branch, another host: a new request, answered on its own (another To tag).
    h.input(&via(&options, OTHER_HOST));
    let other = h.responses();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].code, 200);
    assert_ne!(Some(other[0].to_tag.clone()), None);
    h.input(&via(&options, OTHER_PORT));
    assert_eq!(h.codes(), vec![200]);
    assert_eq!(h.uas.stats().responses_by_code[&200], 3);
}

#[test]
fn same_branch_and_sent_by_with_another_method_is_another_transaction() {
    let mut h = Harness::new();
    let call = Call::new(1);
    h.input(&call.request("OPTIONS", "m1", "", None));
    assert_eq!(h.codes(), vec![200]);
    // RFC 4475 reuses one branch for many requests: a BYE is not the OPTIONS again.
    h.input(&call.request("BYE", "m1", "", None));
    assert_eq!(h.codes(), vec![481]);
    h.input(&call.request("REGISTER", "m1", "", None));
    assert_eq!(h.codes(), vec![405]);
}

#[test]
fn cancel_matches_only_the_invite_with_its_branch_and_sent_by() {
    let mut h = Harness::new();
    let call = Call::new(1);
    h.input(&call.offer("INVITE", "c1", "", &sdp(1, "sendonly")));
    let _ = prepare_id(&mut h);
    h.take_sent();
    let cancel = call.request("CANCEL", "c1", "", None);
    h.input(&via(&cancel, "SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKc1"));
    assert_eq!(h.codes(), vec![481], "another sent-by cancels nothing");
    assert!(h.take_events().is_empty());
    h.input(&cancel);
    let codes: Vec<(u16, Method)> = h
        .responses()
        .iter()
        .map(|r| (r.code, r.cseq_method.clone()))
        .collect();
    assert_eq!(codes, vec![(200, Method::Cancel), (487, Method::Invite)]);
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::Discarded { .. }]
    ));
}

#[test]
fn ack_of_a_non_2xx_matches_only_its_invite_transaction() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let invite = call.offer("INVITE", "n1", "Require: 100rel\r\n", &sdp(1, "sendonly"));
    h.input(&invite);
    let refused = h.responses().remove(0);
    assert_eq!(refused.code, 420);
    call.to_tag = refused.to_tag.clone();
    let ack = call.request("ACK", "n1", "", None);
    // An ACK from another sent-by is not this transaction's: Timer G goes on.
    h.input(&via(&ack, "SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKn1"));
    h.advance(T1);
    assert_eq!(h.codes(), vec![420]);
    h.input(&ack);
    h.advance(T1 * 20);
    assert!(h.take_sent().is_empty(), "the ACK stopped Timer G");
    // Timer I absorbed ACK retransmissions; the transaction is gone after Timer H.
    h.advance(T1 * 64);
    assert!(h.uas.server_txs.is_empty());
}

#[test]
fn rfc_2543_requests_without_the_cookie_match_on_call_id_cseq_from_tag_and_via() {
    let mut h = Harness::new();
    let call = Call::new(1);
    let old_via = "SIP/2.0/UDP 127.0.0.1:5070";
    let invite = via(&call.offer("INVITE", "x", "", &sdp(1, "sendonly")), old_via);
    h.input(&invite);
    assert_eq!(h.codes(), vec![100]);
    let _first = prepare_id(&mut h);
    // The same INVITE again is a retransmission: the 100 again, no second recording.
    h.input(&invite);
    assert_eq!(h.codes(), vec![100]);
    assert!(h.take_events().is_empty());
    // Another CSeq is another transaction: a second INVITE, a second recording.
    h.input(&cseq(&invite, "2 INVITE"));
    assert_eq!(h.codes(), vec![100]);
    let _second = prepare_id(&mut h);
    // A CANCEL without a branch finds the INVITE by the same rule.
    let cancel = via(&call.request("CANCEL", "x", "", None), old_via);
    h.input(&cancel);
    let codes: Vec<u16> = h.codes();
    assert_eq!(codes, vec![200, 487]);
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::Discarded { .. }]
    ));
    assert_eq!(
        h.uas.active_sessions(),
        1,
        "only the CSeq 1 INVITE was cancelled"
    );
    // And its ACK (CSeq 1 ACK, branchless) stops Timer G of the 487.
    let mut acker = Call::new(1);
    acker.to_tag = Some("whatever".into());
    h.input(&via(&acker.request("ACK", "x", "", None), old_via));
    h.advance(T1 * 10);
    assert!(h.take_sent().iter().all(|b| !b.starts_with(b"SIP/2.0 487")));
}

fn tcp_flow(connection: u64) -> Flow {
    Flow {
        transport: Transport::Tcp,
        local: "127.0.0.1:5060".parse().expect("literal"),
        remote: format!("127.0.0.1:{}", 40000 + connection)
            .parse()
            .expect("literal"),
        listener: 0,
        connection: Some(connection),
    }
}

#[test]
fn a_retransmission_on_a_new_connection_is_answered_on_that_connection() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let invite = call
        .offer("INVITE", "t1", "", &sdp(1, "sendonly"))
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    h.flow = tcp_flow(1);
    h.input(&invite);
    let id = prepare_id(&mut h);
    assert_eq!(
        h.sent
            .drain(..)
            .map(|(f, _)| f.connection)
            .collect::<Vec<_>>(),
        vec![Some(1)]
    );
    // The first connection broke; the SRC retransmits on a new one.
    h.flow = tcp_flow(2);
    h.input(&invite);
    assert_eq!(
        h.sent
            .drain(..)
            .map(|(f, _)| f.connection)
            .collect::<Vec<_>>(),
        vec![Some(2)]
    );
    h.uas.recording_prepared(h.now, &id, Ok(()));
    h.collect();
    let sent: Vec<(Option<u64>, Bytes)> =
        h.sent.drain(..).map(|(f, b)| (f.connection, b)).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Some(2), "the 200 goes on the latest connection");
    let ok = match parse_message(sent[0].1.clone(), &Limits::default()) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{other:?}"),
    };
    call.to_tag = ok.to_tag.clone();
    // The INVITE once more, on a third connection: the 2xx again, there.
    h.flow = tcp_flow(3);
    h.input(&invite);
    let again: Vec<Option<u64>> = h.sent.drain(..).map(|(f, _)| f.connection).collect();
    assert_eq!(again, vec![Some(3)]);
    // The recorder's BYE follows the dialog to that connection.
    h.input(
        &call
            .request("ACK", "t1a", "", None)
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP"),
    );
    h.uas
        .stop_recording(h.now, &id, crate::recording::EndReason::Shutdown);
    h.collect();
    let bye: Vec<Option<u64>> = h.sent.drain(..).map(|(f, _)| f.connection).collect();
    assert_eq!(bye, vec![Some(3)]);
}

#[test]
fn a_udp_retransmission_from_a_new_port_is_answered_there() {
    let mut h = Harness::new();
    let options = Call::new(1).request("OPTIONS", "p1", "", None);
    h.input(&options);
    assert_eq!(
        h.sent
            .drain(..)
            .map(|(f, _)| f.remote.port())
            .collect::<Vec<_>>(),
        vec![5070]
    );
    h.flow.remote.set_port(6000);
    h.input(&options);
    // rport: the response goes to the port the latest copy came from.
    assert_eq!(
        h.sent
            .drain(..)
            .map(|(f, _)| f.remote.port())
            .collect::<Vec<_>>(),
        vec![6000]
    );
}

/// INVITE → 200, not yet ACKed; returns the recording id.
fn answered(h: &mut Harness, call: &mut Call, branch: &str) -> String {
    h.input(&call.offer("INVITE", branch, "", &sdp(1, "sendonly")));
    let id = prepare_id(h);
    h.take_sent();
    h.uas.recording_prepared(h.now, &id, Ok(()));
    h.collect();
    let ok = h.responses().remove(0);
    assert_eq!(ok.code, 200);
    call.to_tag = ok.to_tag.clone();
    h.take_events();
    id
}

#[test]
fn an_ack_with_another_cseq_acknowledges_the_one_outstanding_2xx() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    call.cseq = 604674513;
    answered(&mut h, &mut call, "b1");
    // BroadWorks: `CSeq: 832544241 ACK` for `CSeq: 604674513 INVITE`.
    let ack = cseq(&call.request("ACK", "b1a", "", None), "832544241 ACK");
    h.input(&ack);
    h.advance(T1 * 70);
    assert!(
        h.take_sent().is_empty(),
        "no 2xx retransmission, no BYE after the ACK"
    );
    assert_eq!(h.uas.active_sessions(), 1);
    assert_eq!(tolerance(&h, Tolerance::AckCseqMismatch), 1);
    // The next re-INVITE is answered (not 491), and its ACK says `CSeq: N INVITE`.
    call.cseq = 604674514;
    h.input(&call.offer("INVITE", "b2", "", &sdp(2, "inactive")));
    assert_eq!(h.codes(), vec![200]);
    h.input(&cseq(
        &call.request("ACK", "b2a", "", None),
        "604674514 INVITE",
    ));
    h.advance(T1 * 70);
    assert!(h.take_sent().is_empty());
    assert_eq!(h.uas.active_sessions(), 1);
    assert_eq!(tolerance(&h, Tolerance::AckCseqMismatch), 2);
    // A late copy of that ACK does not stand in for the ACK with the answer to our offer
    // (a re-INVITE without SDP).
    call.cseq = 604674515;
    h.take_events();
    h.input(&call.request("INVITE", "b4", "", None));
    assert_eq!(h.codes(), vec![200]);
    h.input(&cseq(
        &call.request("ACK", "b2a", "", None),
        "604674514 INVITE",
    ));
    h.advance(T1);
    assert_eq!(h.codes(), vec![200], "still unacknowledged: retransmitted");
    let answer = sdp(3, "sendonly");
    h.input(&call.request("ACK", "b4a", "", Some(("application/sdp", &answer))));
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::MediaChanged { .. }]
    ));
    h.advance(T1 * 70);
    assert!(h.take_sent().is_empty());
    assert_eq!(tolerance(&h, Tolerance::AckCseqMismatch), 2);
    // With nothing outstanding an odd ACK changes nothing and counts nothing.
    h.input(&cseq(&call.request("ACK", "b3a", "", None), "1 ACK"));
    assert_eq!(tolerance(&h, Tolerance::AckCseqMismatch), 2);
}

#[test]
fn an_src_that_reuses_one_odd_ack_cseq_has_every_2xx_acknowledged() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    answered(&mut h, &mut call, "f1");
    for (n, branch) in [(2, "f2"), (3, "f3"), (4, "f4")] {
        h.input(&cseq(
            &call.request("ACK", &format!("{branch}a"), "", None),
            "999 ACK",
        ));
        h.advance(T1 * 2);
        assert!(h.take_sent().is_empty(), "ACK {n} not taken");
        call.cseq = n;
        let direction = if n % 2 == 0 { "inactive" } else { "sendonly" };
        h.input(&call.offer("INVITE", branch, "", &sdp(n, direction)));
        assert_eq!(h.codes(), vec![200]);
    }
    h.input(&cseq(&call.request("ACK", "f5a", "", None), "999 ACK"));
    h.advance(T1 * 70);
    assert!(h.take_sent().is_empty());
    assert_eq!(h.uas.active_sessions(), 1);
    assert_eq!(tolerance(&h, Tolerance::AckCseqMismatch), 4);
}

#[test]
fn ack_and_bye_without_our_to_tag_match_the_one_dialog_of_call_id_and_from_tag() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let id = answered(&mut h, &mut call, "q1");
    let tag = call.to_tag.clone().expect("tag");
    // Cisco CUBE: ACK and BYE with the INVITE's To.
    h.input(&untagged_to(&call.request("ACK", "q1a", "", None), &tag));
    h.advance(T1 * 70);
    assert!(h.take_sent().is_empty(), "ACKed: no retransmission, no BYE");
    assert_eq!(h.uas.active_sessions(), 1);
    call.cseq = 2;
    h.input(&untagged_to(&call.request("BYE", "q1b", "", None), &tag));
    let ok = h.responses().remove(0);
    assert_eq!(ok.code, 200);
    assert_eq!(
        ok.to_tag.as_deref(),
        Some(tag.as_str()),
        "the 200 carries our tag"
    );
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::Ended { recording_id, reason: EndReason::Bye }] if *recording_id == id
    ));
    assert_eq!(tolerance(&h, Tolerance::MissingToTag), 2);
}

#[test]
fn a_bye_without_to_tag_is_481_when_no_or_several_dialogs_fit() {
    let mut h = Harness::new();
    let mut a = Call::new(1);
    answered(&mut h, &mut a, "d1");
    // A second INVITE with the same Call-ID and From tag (a fork the SRC made): ambiguous.
    let mut b = Call::new(1);
    b.cseq = 7;
    answered(&mut h, &mut b, "d2");
    let mut bye = Call::new(1);
    bye.cseq = 9;
    h.input(&bye.request("BYE", "d3", "", None));
    assert_eq!(h.codes(), vec![481]);
    h.input(&Call::new(5).request("BYE", "d4", "", None));
    assert_eq!(h.codes(), vec![481]);
    assert_eq!(h.uas.active_sessions(), 2);
    assert_eq!(tolerance(&h, Tolerance::MissingToTag), 0);
}

#[test]
fn a_bye_with_a_lower_cseq_still_ends_the_dialog_a_reinvite_gets_500() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    call.cseq = 10;
    h.establish(&mut call);
    call.cseq = 4;
    h.input(&call.offer("INVITE", "l1", "", &sdp(2, "inactive")));
    assert_eq!(h.codes(), vec![500]);
    assert_eq!(tolerance(&h, Tolerance::LowerCseqBye), 0);
    call.cseq = 3;
    h.input(&call.request("BYE", "l2", "", None));
    assert_eq!(h.codes(), vec![200]);
    h.assert_ended(EndReason::Bye);
    assert_eq!(tolerance(&h, Tolerance::LowerCseqBye), 1);
}

/// A call where the recorder refreshes the session with UPDATE every 60 s.
fn refreshed_call(h: &mut Harness) -> (Call, String) {
    let mut call = Call::new(1);
    let extra = "Session-Expires: 120;refresher=uas\r\nSupported: timer\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    h.input(&call.offer("INVITE", "g1", extra, &sdp(1, "sendonly")));
    let id = prepare_id(h);
    h.take_sent();
    h.uas.recording_prepared(h.now, &id, Ok(()));
    h.collect();
    call.to_tag = h.responses().remove(0).to_tag;
    h.input(&call.request("ACK", "g1a", "", None));
    h.take_events();
    (call, id)
}

#[test]
fn glare_our_update_meets_their_reinvite_their_change_wins_and_no_stale_refresh_follows() {
    let mut h = Harness::new();
    let (mut call, _id) = refreshed_call(&mut h);
    h.advance(Duration::from_secs(60));
    let update = distinct_requests(&mut h).remove(0);
    assert_eq!(update.method, Method::Update);
    // Their re-INVITE crosses our UPDATE: it is answered, never refused for our refresh.
    call.cseq = 2;
    h.input(&call.offer("INVITE", "g2", "", &sdp(2, "inactive")));
    assert_eq!(h.codes(), vec![200]);
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::MediaChanged { .. }]
    ));
    h.input(&call.request("ACK", "g2a", "", None));
    // They answer our UPDATE 491: their re-INVITE refreshed the session already, so the
    // retry finds nothing to do; the session timer runs from the re-INVITE.
    h.input(&answer(&update, 491));
    assert_eq!(tolerance(&h, Tolerance::GlareRetry), 1);
    h.advance(Duration::from_secs(5));
    assert!(distinct_requests(&mut h).is_empty());
    h.advance(Duration::from_secs(60));
    assert_eq!(
        distinct_requests(&mut h)
            .iter()
            .map(|r| r.method.clone())
            .collect::<Vec<_>>(),
        vec![Method::Update]
    );
}

#[test]
fn glare_a_491_to_our_update_is_retried_after_2_1_to_4_seconds() {
    let mut h = Harness::new();
    let _ = refreshed_call(&mut h);
    h.advance(Duration::from_secs(60));
    let update = distinct_requests(&mut h).remove(0);
    h.input(&answer(&update, 491));
    h.advance(Duration::from_millis(2090));
    assert!(distinct_requests(&mut h).is_empty(), "not before 2.1 s");
    h.advance(Duration::from_millis(1920));
    let retry = distinct_requests(&mut h);
    assert_eq!(retry.len(), 1, "retried by 4 s");
    assert_eq!(retry[0].method, Method::Update);
    assert_eq!(retry[0].cseq, update.cseq + 1);
    assert_ne!(retry[0].branch(), update.branch());
}

#[test]
fn glare_a_491_to_our_bye_is_retried() {
    let mut h = Harness::new();
    let (_call, id) = refreshed_call(&mut h);
    h.uas.stop_recording(h.now, &id, EndReason::Shutdown);
    h.collect();
    let bye = distinct_requests(&mut h).remove(0);
    assert_eq!(bye.method, Method::Bye);
    h.input(&answer(&bye, 491));
    h.advance(Duration::from_secs(4));
    let retry = distinct_requests(&mut h);
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (retry[0].method.clone(), retry[0].cseq),
        (Method::Bye, bye.cseq + 1)
    );
    h.input(&answer(&retry[0], 200));
    h.advance(Duration::from_secs(40));
    assert!(distinct_requests(&mut h).is_empty());
    assert_eq!(tolerance(&h, Tolerance::GlareRetry), 1);
}

#[test]
fn an_invite_without_sdp_gets_our_offer_and_the_ack_answer_is_applied() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.input(&call.request("INVITE", "o1", "", None));
    assert_eq!(h.codes(), vec![100]);
    let id = prepare_id(&mut h);
    h.uas.recording_prepared(h.now, &id, Ok(()));
    h.collect();
    let ok = h.responses().remove(0);
    assert_eq!(ok.code, 200);
    call.to_tag = ok.to_tag.clone();
    h.take_events();
    let answer_sdp = "v=0\r\no=src 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                      m=audio 31000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendonly\r\n";
    h.input(&call.request("ACK", "o1a", "", Some(("application/sdp", answer_sdp))));
    let events = h.take_events();
    let [RecordingEvent::MediaChanged { media, .. }] = events.as_slice() else {
        panic!("expected MediaChanged, got {events:?}")
    };
    let stream = &media.streams[0];
    assert_eq!(stream.remote_port, 31000);
    assert_eq!(stream.codec.as_ref().map(|c| c.name.as_str()), Some("PCMA"));
    assert_eq!(stream.answered_direction, crate::sdp::Direction::RecvOnly);
    h.advance(T1 * 70);
    assert!(h.take_sent().is_empty());
    assert_eq!(h.uas.active_sessions(), 1);
}

#[test]
fn the_200_to_an_invite_without_sdp_offers_every_storable_codec_recvonly() {
    let mut h = Harness::new();
    h.input(&Call::new(1).request("INVITE", "o2", "", None));
    let id = prepare_id(&mut h);
    h.take_sent();
    h.uas.recording_prepared(h.now, &id, Ok(()));
    h.collect();
    let sent = h.take_sent();
    let text = String::from_utf8_lossy(&sent[0]);
    let ok = match parse_message(sent[0].clone(), &Limits::default()) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(header(&ok, "Content-Type"), Some("application/sdp"));
    assert!(text.contains("a=recvonly"), "{text}");
    for name in crate::sdp::codec::STORABLE.iter().map(|c| c.name) {
        assert!(
            text.contains(&format!(" {name}/")),
            "{name} not offered: {text}"
        );
    }
}

#[test]
fn an_ack_without_an_answer_to_our_offer_ends_the_call_as_an_error() {
    for body in [
        None,
        Some(("application/sdp", "this is no SDP")),
        Some((
            "application/sdp",
            "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 3000 RTP/AVP 98\r\na=rtpmap:98 iLBC/8000\r\n",
        )),
    ] {
        let mut h = Harness::new();
        let mut call = Call::new(1);
        h.input(&call.request("INVITE", "o3", "", None));
        let id = prepare_id(&mut h);
        h.take_sent();
        h.uas.recording_prepared(h.now, &id, Ok(()));
        h.collect();
        call.to_tag = h.responses().remove(0).to_tag;
        h.take_events();
        h.input(&call.request("ACK", "o3a", "", body));
        let byes: Vec<Method> = h.requests().into_iter().map(|r| r.method).collect();
        assert_eq!(byes, vec![Method::Bye], "{body:?}");
        assert!(
            matches!(
                h.take_events().as_slice(),
                [RecordingEvent::Ended {
                    reason: EndReason::Error,
                    ..
                }]
            ),
            "{body:?}"
        );
        assert_eq!(h.uas.active_sessions(), 0);
    }
}

#[test]
fn a_bye_refused_with_491_again_and_again_is_given_up_after_three_retries() {
    let mut h = Harness::new();
    let (_call, id) = refreshed_call(&mut h);
    h.uas.stop_recording(h.now, &id, EndReason::Shutdown);
    h.collect();
    let mut byes = 0;
    for _ in 0..6 {
        let sent = distinct_requests(&mut h);
        for bye in &sent {
            h.input(&answer(bye, 491));
        }
        byes += sent.len();
        h.advance(Duration::from_secs(4));
    }
    assert_eq!(byes, 4, "the BYE and three retries");
}

#[test]
fn a_request_reusing_the_branch_of_an_unanswered_invite_is_refused_alone() {
    let mut h = Harness::new();
    let call = Call::new(1);
    h.input(&call.offer("INVITE", "r1", "", &sdp(1, "sendonly")));
    let id = prepare_id(&mut h);
    h.take_sent();
    // Same branch, sent-by and method, another call: not a retransmission.
    h.input(&Call::new(2).offer("INVITE", "r1", "", &sdp(1, "sendonly")));
    let refused = h.responses();
    assert_eq!(
        refused
            .iter()
            .map(|r| (r.code, r.call_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(400, "call-2@test")]
    );
    assert!(h.take_events().is_empty());
    // The first INVITE is still answered normally.
    h.uas.recording_prepared(h.now, &id, Ok(()));
    h.collect();
    let ok = h.responses();
    assert_eq!(
        ok.iter()
            .map(|r| (r.code, r.call_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(200, "call-1@test")]
    );
}

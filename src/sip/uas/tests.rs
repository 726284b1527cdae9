//! State-machine tests of the UAS on a virtual clock: no sockets, no sleeping.

use super::test_harness::*;
use super::*;
use crate::sip::transaction_log::TransactionEvent;

#[test]
fn invite_is_answered_after_the_recording_is_prepared() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let capacity = h.uas.free_rtp_ports();
    h.establish(&mut call);
    assert_eq!(h.uas.active_sessions(), 1);
    assert_eq!(
        h.uas.free_rtp_ports(),
        capacity - 2,
        "two audio streams hold two ports"
    );
}

#[test]
fn prepare_carries_the_genesys_target() {
    let mut h = Harness::new();
    let call = Call::new(1);
    h.input(&call.offer("INVITE", "a", "", &sdp(1, "sendonly")));
    let events = h.take_events();
    let RecordingEvent::Prepare { request, media, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(request.kind, crate::sip::classify::RecordingKind::Genesys);
    let g = request.genesys.as_ref().unwrap();
    assert_eq!(
        (g.record_id.as_str(), g.dn.as_deref(), g.other_dn.as_deref()),
        ("REC1", Some("1001"), Some("1002"))
    );
    assert_eq!(media.streams.len(), 2);
    assert!(
        media
            .streams
            .iter()
            .all(|s| s.answered_direction == crate::sdp::Direction::RecvOnly)
    );
}

#[test]
fn retransmitted_invite_gets_the_same_answer_and_no_second_recording() {
    let mut h = Harness::new();
    let call = Call::new(1);
    let invite = call.offer("INVITE", "r1", "", &sdp(1, "sendonly"));
    h.input(&invite);
    let first = h.take_sent();
    h.input(&invite);
    assert_eq!(h.take_sent(), first, "100 repeated while preparing");
    let events = h.take_events();
    assert_eq!(events.len(), 1);
    let RecordingEvent::Prepare { recording_id, .. } = &events[0] else {
        panic!()
    };
    h.uas.recording_prepared(h.now, recording_id, Ok(()));
    h.collect();
    let ok = h.take_sent();
    h.input(&invite);
    assert_eq!(h.take_sent(), ok, "the same 200 again");
    assert_eq!(
        h.take_events().len(),
        1,
        "only Established, no second Prepare"
    );
    assert_eq!(h.uas.active_sessions(), 1);
}

#[test]
fn udp_2xx_is_retransmitted_with_doubling_intervals_until_ack() {
    let mut h = Harness::new();
    let call = Call::new(1);
    h.input(&call.offer("INVITE", "x", "", &sdp(1, "sendonly")));
    h.prepare_first();
    h.take_sent();
    let mut times = vec![];
    let start = h.now;
    for _ in 0..200 {
        h.advance(Duration::from_millis(100));
        if !h.take_sent().is_empty() {
            times.push((h.now - start).as_millis() / 100 * 100);
        }
        if times.len() == 6 {
            break;
        }
    }
    // T1=500: 0.5, 1.5, 3.5, 7.5 (interval capped at T2=4 s from here), 11.5, 15.5
    assert_eq!(times, vec![500, 1500, 3500, 7500, 11500, 15500]);
}

#[test]
fn missing_ack_ends_the_recording_with_bye_after_64_t1() {
    let mut h = Harness::new();
    let capacity = h.uas.free_rtp_ports();
    let call = Call::new(1);
    h.input(&call.offer("INVITE", "x", "", &sdp(1, "sendonly")));
    h.prepare_first();
    h.take_events();
    h.advance(T1 * 64 - Duration::from_millis(1));
    assert!(h.requests().is_empty());
    h.advance(Duration::from_millis(1));
    let byes = h.requests();
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].method, Method::Bye);
    assert_eq!(byes[0].call_id, call.call_id);
    h.assert_ended(EndReason::AckTimeout);
    assert_eq!(h.uas.active_sessions(), 0);
    assert_eq!(h.uas.free_rtp_ports(), capacity);
}

#[test]
fn bye_over_udp_is_retransmitted_until_answered() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let id = h.establish(&mut call);
    h.uas.stop_recording(h.now, &id, EndReason::Shutdown);
    h.collect();
    let bye = h.requests().remove(0);
    h.advance(T1);
    assert_eq!(h.requests().len(), 1, "retransmitted after T1");
    let branch = bye.branch().unwrap().to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\nFrom: {}\r\nTo: {}\r\n\
         Call-ID: {}\r\nCSeq: {} BYE\r\nContent-Length: 0\r\n\r\n",
        bye.from.raw, bye.to.raw, bye.call_id, bye.cseq
    );
    h.input(&ok);
    h.advance(T1 * 70);
    assert!(h.requests().is_empty(), "no retransmission after the 200");
}

#[test]
fn cancel_before_the_answer_gets_200_and_487_and_discards() {
    let mut h = Harness::new();
    let capacity = h.uas.free_rtp_ports();
    let call = Call::new(1);
    h.input(&call.offer("INVITE", "c1", "", &sdp(1, "sendonly")));
    let RecordingEvent::Prepare { recording_id, .. } = h.take_events().remove(0) else {
        panic!()
    };
    h.take_sent();
    let mut cancel = Call::new(1);
    cancel.cseq = 1;
    h.input(&cancel.request("CANCEL", "c1", "", None));
    let responses = h.responses();
    let codes: Vec<(u16, Method)> = responses
        .iter()
        .map(|r| (r.code, r.cseq_method.clone()))
        .collect();
    assert_eq!(codes, vec![(200, Method::Cancel), (487, Method::Invite)]);
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::Discarded { .. }]
    ));
    assert_eq!(h.uas.free_rtp_ports(), capacity);
    // The prepare finishing later changes nothing.
    h.uas.recording_prepared(h.now, &recording_id, Ok(()));
    h.collect();
    assert!(h.take_sent().is_empty());
    assert!(h.take_events().is_empty());
    // 487 retransmitted (Timer G) until the ACK.
    h.advance(T1);
    assert_eq!(h.codes(), vec![487]);
    let mut ack = Call::new(1);
    ack.to_tag = responses[1].to_tag.clone();
    h.input(&ack.request("ACK", "c1", "", None));
    h.advance(T1 * 10);
    assert!(h.take_sent().is_empty());
}

#[test]
fn cancel_after_the_answer_has_no_effect_and_unknown_cancel_gets_481() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    let cancel = Call::new(1);
    h.input(&cancel.request("CANCEL", &format!("inv{}", call.from_tag), "", None));
    assert_eq!(h.codes(), vec![200]);
    assert!(h.take_events().is_empty());
    assert_eq!(h.uas.active_sessions(), 1);
    h.input(&Call::new(9).request("CANCEL", "nope", "", None));
    assert_eq!(h.codes(), vec![481]);
}

#[test]
fn pause_resume_and_refresh_reinvites() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    let ports: Vec<u16> = {
        call.cseq = 2;
        h.input(&call.offer("INVITE", "p", "", &sdp(2, "inactive")));
        let r = h.responses().remove(0);
        assert_eq!(r.code, 200);
        let RecordingEvent::MediaChanged { media, .. } = h.take_events().remove(0) else {
            panic!()
        };
        assert!(
            media
                .streams
                .iter()
                .all(|s| s.answered_direction == crate::sdp::Direction::Inactive)
        );
        media.streams.iter().map(|s| s.local_port).collect()
    };
    h.input(&call.request("ACK", "pa", "", None));
    call.cseq = 3;
    h.input(&call.offer("INVITE", "r", "", &sdp(3, "sendonly")));
    let resumed = h.take_sent();
    let RecordingEvent::MediaChanged { media, .. } = h.take_events().remove(0) else {
        panic!()
    };
    assert!(
        media
            .streams
            .iter()
            .all(|s| s.answered_direction == crate::sdp::Direction::RecvOnly)
    );
    assert_eq!(
        media
            .streams
            .iter()
            .map(|s| s.local_port)
            .collect::<Vec<_>>(),
        ports,
        "ports kept"
    );
    h.input(&call.request("ACK", "ra", "", None));
    // A session refresh: same o= version → same answer body, no event.
    call.cseq = 4;
    h.input(&call.offer(
        "INVITE",
        "f",
        "Session-Expires: 1800;refresher=uac\r\n",
        &sdp(3, "sendonly"),
    ));
    let refreshed = h.take_sent();
    assert!(h.take_events().is_empty(), "a refresh changes nothing");
    let body = |b: &Bytes| {
        let s = String::from_utf8_lossy(b).to_string();
        s[s.find("\r\n\r\n").unwrap()..].to_string()
    };
    assert_eq!(body(&refreshed[0]), body(&resumed[0]));
}

#[test]
fn overlapping_reinvite_gets_491_and_lower_cseq_500() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    call.cseq = 5;
    h.input(&call.offer("INVITE", "o1", "", &sdp(2, "inactive")));
    assert_eq!(h.codes(), vec![200]);
    call.cseq = 6;
    h.input(&call.offer("INVITE", "o2", "", &sdp(3, "sendonly")));
    assert_eq!(h.codes(), vec![491], "previous re-INVITE not ACKed yet");
    call.cseq = 5;
    h.input(&call.request("ACK", "o1a", "", None));
    call.cseq = 4;
    h.input(&call.offer("INVITE", "o3", "", &sdp(3, "sendonly")));
    assert_eq!(h.codes(), vec![500]);
}

#[test]
fn bye_ends_and_unknown_dialogs_get_481() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    call.cseq = 2;
    let bye = call.request("BYE", "b", "", None);
    h.input(&bye);
    assert_eq!(h.codes(), vec![200]);
    h.assert_ended(EndReason::Bye);
    h.input(&bye);
    assert_eq!(h.codes(), vec![200], "retransmitted BYE: cached 200");
    assert!(h.take_events().is_empty());
    call.cseq = 3;
    h.input(&call.request("BYE", "b2", "", None));
    assert_eq!(h.codes(), vec![481]);
    h.input(&call.offer("INVITE", "b3", "", &sdp(5, "sendonly")));
    assert_eq!(h.codes(), vec![481]);
}

#[test]
fn session_timer_422_and_expiry() {
    let mut h = Harness::new();
    let call = Call::new(1);
    h.input(&call.offer(
        "INVITE",
        "s1",
        "Session-Expires: 30\r\nSupported: timer\r\n",
        &sdp(1, "sendonly"),
    ));
    let r = h.responses().remove(0);
    assert_eq!(r.code, 422);
    assert_eq!(header(&r, "Min-SE"), Some("90"));
    let mut ack = Call::new(1);
    ack.to_tag = r.to_tag.clone();
    h.input(&ack.request("ACK", "s1", "", None));

    let mut call = Call::new(2);
    h.input(&call.offer(
        "INVITE",
        "s2",
        "Session-Expires: 90\r\nSupported: timer\r\n",
        &sdp(1, "sendonly"),
    ));
    let RecordingEvent::Prepare { recording_id, .. } = h.take_events().remove(0) else {
        panic!()
    };
    h.take_sent();
    h.uas.recording_prepared(h.now, &recording_id, Ok(()));
    h.collect();
    let ok = h.responses().remove(0);
    assert_eq!(header(&ok, "Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(header(&ok, "Require"), Some("timer"));
    call.to_tag = ok.to_tag.clone();
    h.input(&call.request("ACK", "s2a", "", None));
    h.take_events();
    // Refreshed at 50 s: expiry moves to 50 + 60.
    h.advance(Duration::from_secs(50));
    call.cseq = 2;
    h.input(&call.offer(
        "INVITE",
        "s2r",
        "Session-Expires: 90;refresher=uac\r\n",
        &sdp(1, "sendonly"),
    ));
    assert_eq!(h.codes(), vec![200]);
    h.input(&call.request("ACK", "s2ra", "", None));
    h.advance(Duration::from_secs(59));
    assert!(h.requests().is_empty());
    h.advance(Duration::from_millis(1001));
    let byes = h.requests();
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].method, Method::Bye);
    h.assert_ended(EndReason::SessionTimeout);
}

#[test]
fn recorder_refreshes_with_update_when_it_is_the_refresher() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let extra = "Session-Expires: 120;refresher=uas\r\nSupported: timer\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    h.input(&call.offer("INVITE", "u1", extra, &sdp(1, "sendonly")));
    let RecordingEvent::Prepare { recording_id, .. } = h.take_events().remove(0) else {
        panic!()
    };
    h.take_sent();
    h.uas.recording_prepared(h.now, &recording_id, Ok(()));
    h.collect();
    let ok = h.responses().remove(0);
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uas"));
    call.to_tag = ok.to_tag.clone();
    h.input(&call.request("ACK", "u1a", "", None));
    h.advance(Duration::from_secs(60));
    let reqs = h.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, Method::Update);
}

#[test]
fn error_answers_for_bad_requests() {
    let mut h = Harness::new();
    let sdp1 = sdp(1, "sendonly");
    let call = Call::new(1);
    let cases: Vec<(String, u16)> = vec![
        (call.request("INVITE", "e1", "", Some(("application/sdp", &sdp1))).replace("Max-Forwards: 70", "Max-Forwards: 0"), 483),
        (call.request("INVITE", "e2", "Require: foo, timer\r\n", Some(("application/sdp", &sdp1))), 420),
        (call.request("INVITE", "e3", "", Some(("text/plain", "hello"))), 415),
        (
            call.request("INVITE", "e4", "", Some(("application/sdp", &sdp1))).replacen(
                "sip:record=REC1@127.0.0.1:5060;calluuid=CU1;dn=1001;otherDN=1002;recordDN=1001",
                "tel:+15551234",
                1,
            ),
            416,
        ),
        (call.request("FOO", "e5", "", None), 501),
        (call.request("REGISTER", "e6", "", None), 405),
        (call.request("SUBSCRIBE", "e7", "", None), 405),
        (
            call.request("INVITE", "e8", "", Some(("application/sdp", &sdp1.replace("RTP/AVP 0 101", "RTP/AVP 3").replace("a=rtpmap:0 PCMU/8000\r\n", "")))),
            488,
        ),
    ];
    for (msg, code) in cases {
        h.input(&msg);
        let r = h.responses();
        assert_eq!(r.len(), 1, "{msg}");
        assert_eq!(r[0].code, code, "{msg}");
        match code {
            420 => assert_eq!(header(&r[0], "Unsupported"), Some("foo")),
            405 | 501 => assert!(header(&r[0], "Allow").unwrap().contains("INVITE")),
            415 => assert!(header(&r[0], "Accept").unwrap().contains("application/sdp")),
            488 => assert!(header(&r[0], "Warning").is_some()),
            _ => {}
        }
    }
    assert!(h.take_events().is_empty(), "nothing recorded");
    assert_eq!(h.uas.active_sessions(), 0);
}

#[test]
fn admission_control_and_drain() {
    let mut cfg = config();
    cfg.max_sessions = 1;
    let mut h = Harness::with(cfg, PortPool::new(20000, 20099));
    let mut call = Call::new(1);
    h.establish(&mut call);
    let second = Call::new(2);
    h.input(&second.offer("INVITE", "a2", "", &sdp(1, "sendonly")));
    let r = h.responses().remove(0);
    assert_eq!((r.code, header(&r, "Retry-After")), (503, Some("5")));
    h.input(&second.request("OPTIONS", "o1", "", None));
    assert_eq!(h.codes(), vec![503]);
    call.cseq = 2;
    h.input(&call.request("BYE", "b", "", None));
    h.take_sent();
    h.input(&second.request("OPTIONS", "o2", "", None));
    let r = h.responses().remove(0);
    assert_eq!(r.code, 200);
    assert!(
        header(&r, "Allow").is_some()
            && header(&r, "Accept").is_some()
            && header(&r, "Supported").is_some()
    );
    h.uas.start_drain();
    h.input(&second.request("OPTIONS", "o3", "", None));
    assert_eq!(h.codes(), vec![503]);
}

#[test]
fn port_exhaustion_gets_503() {
    // Room for exactly two streams: one two-party call.
    let mut h = Harness::with(config(), PortPool::new(20000, 20003));
    let mut call = Call::new(1);
    h.establish(&mut call);
    h.input(&Call::new(2).offer("INVITE", "p2", "", &sdp(1, "sendonly")));
    let r = h.responses().remove(0);
    assert_eq!((r.code, header(&r, "Retry-After").is_some()), (503, true));
}

#[test]
fn update_with_and_without_sdp() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    call.cseq = 2;
    h.input(&call.offer("UPDATE", "up1", "", &sdp(2, "inactive")));
    let sent = h.take_sent();
    let text = String::from_utf8_lossy(&sent[0]).to_string();
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
    assert!(text.contains("a=inactive"), "{text}");
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::MediaChanged { .. }]
    ));
    call.cseq = 3;
    h.input(&call.request("UPDATE", "up2", "", None));
    let r = h.responses().remove(0);
    assert_eq!(r.code, 200);
    assert!(h.take_events().is_empty());
}

#[test]
fn reinvite_without_sdp_offers_the_current_session() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    call.cseq = 2;
    h.input(&call.request("INVITE", "n1", "", None));
    let sent = h.take_sent();
    let text = String::from_utf8_lossy(&sent[0]).to_string();
    assert!(
        text.starts_with("SIP/2.0 200") && text.contains("m=audio"),
        "{text}"
    );
    h.input(&call.offer("ACK", "n1a", "", &sdp(2, "inactive")));
    assert!(matches!(
        h.take_events().as_slice(),
        [RecordingEvent::MediaChanged { .. }]
    ));
}

#[test]
fn garbage_never_disturbs_an_active_recording() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    let mut seed = 0x2545F4914F6CDD1Du64;
    for i in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 300) as usize;
        let junk: Vec<u8> = (0..len)
            .map(|k| (seed.rotate_left(k as u32 % 64) as u8) ^ (i as u8))
            .collect();
        h.uas.handle_input(h.now, Bytes::from(junk), h.flow);
        h.collect();
    }
    h.take_sent();
    assert!(h.take_events().is_empty());
    call.cseq = 2;
    h.input(&call.request("BYE", "g", "", None));
    assert_eq!(h.codes(), vec![200]);
    h.assert_ended(EndReason::Bye);
}

#[test]
fn every_transaction_is_reported_for_the_edr_log() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    h.establish(&mut call);
    call.cseq = 2;
    h.input(&call.offer("INVITE", "t2", "", &sdp(2, "inactive")));
    h.input(&call.request("ACK", "t2a", "", None));
    call.cseq = 3;
    h.input(&call.request("BYE", "t3", "", None));
    h.input(&Call::new(7).request("BYE", "t4", "", None).replace(
        "To: <sip:record@127.0.0.1>",
        "To: <sip:record@127.0.0.1>;tag=nope",
    ));
    let c5 = Call::new(5);
    h.input(&c5.offer("INVITE", "t5", "", &sdp(1, "sendonly")));
    h.input(&c5.request("CANCEL", "t5", "", None));
    let seen = h.reported();
    assert_eq!(
        seen,
        vec![
            (TransactionEvent::InInvite, Some(200)),
            (TransactionEvent::InAck, None),
            (TransactionEvent::InReinvite, Some(200)),
            (TransactionEvent::InAck, None),
            (TransactionEvent::InBye, Some(200)),
            (TransactionEvent::InByeUnknown, Some(481)),
            (TransactionEvent::InCancel, Some(200)),
            (TransactionEvent::InInvite, Some(487)),
        ]
    );
    let invite = &h.transactions[0];
    assert!(invite.sdp_in.as_deref().unwrap().contains("m=audio 30000"));
    assert!(invite.sdp_out.as_deref().unwrap().contains("a=recvonly"));
    assert_eq!(
        invite.via.as_ref().and_then(|v| v.branch.as_deref()),
        Some("z9hG4bKinvft1")
    );
    assert_eq!(invite.remote_tag.as_deref(), Some("ft1"));
    assert!(invite.local_tag.is_some());
}

#[test]
fn only_transactions_the_edr_log_writes_are_reported() {
    let mut cfg = config();
    cfg.report_acks = false;
    cfg.sources.rate_per_second = 1.0;
    cfg.sources.burst = 2.0;
    let mut h = Harness::with(cfg, PortPool::new(20000, 20099));
    let mut call = Call::new(1);
    h.establish(&mut call); // one token: the INVITE
    h.input(&Call::new(2).request("OPTIONS", "o1", "", None)); // the second
    let offer = sdp(1, "sendonly");
    for i in 0..5 {
        let flood = Call::new(10 + i);
        h.input(&flood.offer("INVITE", &format!("f{i}"), "", &offer));
    }
    h.input(&Call::new(3).request("FOO", "x1", "", None));
    assert_eq!(h.codes(), vec![200, 503, 503, 503, 503, 503, 503]);
    call.cseq = 2;
    h.input(&call.request("UPDATE", "u", "", None));
    call.cseq = 3;
    h.input(&call.request("BYE", "b", "", None));
    let seen = h.reported();
    // No OPTIONS, no rate-limited INVITE, no refused method, no UPDATE, no ACK.
    assert_eq!(
        seen,
        vec![
            (TransactionEvent::InInvite, Some(200)),
            (TransactionEvent::InBye, Some(200)),
        ]
    );
}

#[test]
fn a_bye_the_recorder_sends_is_reported_with_its_answer_or_408() {
    let mut h = Harness::new();
    let mut call = Call::new(1);
    let id = h.establish(&mut call);
    h.transactions.clear();
    h.uas.stop_recording(h.now, &id, EndReason::Shutdown);
    h.collect();
    assert!(
        h.transactions.is_empty(),
        "reported when it ends, not when sent"
    );
    h.advance(T1 * 64);
    let seen = h.reported();
    assert_eq!(seen, vec![(TransactionEvent::OutBye, Some(408))]);
}

#[test]
fn source_control_allow_list_rate_limit_and_scanners() {
    let mut cfg = config();
    cfg.sources.allow = vec!["10.0.0.0/8".parse().unwrap()];
    let mut h = Harness::with(cfg, PortPool::new(20000, 20099));
    h.input(&Call::new(1).request("OPTIONS", "o1", "", None));
    assert_eq!(h.codes(), vec![403], "127.0.0.1 is not on the allow-list");
    let mut cfg = config();
    cfg.sources.allow = vec!["10.0.0.0/8".parse().unwrap()];
    cfg.sources.reply_to_refused = false;
    let mut h = Harness::with(cfg, PortPool::new(20000, 20099));
    h.input(&Call::new(1).request("OPTIONS", "o1", "", None));
    h.uas
        .handle_input(h.now, Bytes::from_static(b"garbage"), h.flow);
    h.collect();
    assert!(h.take_sent().is_empty(), "dropped silently, garbage too");

    let mut cfg = config();
    cfg.sources.rate_per_second = 1.0;
    cfg.sources.burst = 3.0;
    let mut h = Harness::with(cfg, PortPool::new(20000, 20099));
    let mut call = Call::new(1);
    h.establish(&mut call); // one token
    for i in 0..4 {
        h.input(&Call::new(10 + i).request("OPTIONS", &format!("r{i}"), "", None));
    }
    assert_eq!(
        h.codes(),
        vec![200, 200, 503, 503],
        "burst of 3 incl. the INVITE"
    );
    // In-dialog requests are never limited: the call can still be paused and hung up.
    call.cseq = 2;
    h.input(&call.offer("INVITE", "p", "", &sdp(2, "inactive")));
    h.input(&call.request("ACK", "pa", "", None));
    call.cseq = 3;
    h.input(&call.request("BYE", "b", "", None));
    assert_eq!(h.codes(), vec![200, 200]);

    let mut h = Harness::new();
    h.input(&Call::new(1).request("OPTIONS", "s1", "User-Agent: friendly-scanner\r\n", None));
    assert!(h.take_sent().is_empty(), "scanners get nothing");
}

#[test]
fn duplicated_to_header_gets_400_and_no_crash() {
    // The reply builder must never have to pick between two To values (a crash in other
    // SIP servers' reply builders).
    let mut h = Harness::new();
    let call = Call::new(1);
    let invite = call.offer("INVITE", "d1", "", &sdp(1, "sendonly")).replace(
        "To: <sip:record@127.0.0.1>\r\n",
        "To: <sip:record@127.0.0.1>\r\nTo: <sip:other@127.0.0.1>;tag=x\r\n",
    );
    h.input(&invite);
    let codes = h.codes();
    assert!(codes.is_empty() || codes == vec![400], "{codes:?}");
    assert!(h.take_events().is_empty(), "nothing recorded");
}

mod metadata;

#[test]
fn a_failed_prepare_is_answered_by_who_is_at_fault() {
    for (error, code) in [
        (PrepareError::Unavailable, 503),
        (PrepareError::NotAcceptable, 488),
        (PrepareError::Failed, 500),
    ] {
        let mut h = Harness::new();
        let capacity = h.uas.free_rtp_ports();
        let call = Call::new(1);
        h.input(&call.offer("INVITE", "f", "", &sdp(1, "sendonly")));
        assert_eq!(h.codes(), vec![100]);
        let events = h.take_events();
        let [RecordingEvent::Prepare { recording_id, .. }] = events.as_slice() else {
            panic!("expected Prepare");
        };
        h.uas.recording_prepared(h.now, recording_id, Err(error));
        h.collect();
        let responses = h.responses();
        assert_eq!(
            responses.iter().map(|r| r.code).collect::<Vec<_>>(),
            vec![code]
        );
        assert_eq!(header(&responses[0], "Retry-After").is_some(), code == 503);
        assert_eq!(
            h.uas.free_rtp_ports(),
            capacity,
            "{error:?} gave its ports back"
        );
    }
}

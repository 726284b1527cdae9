//! Where responses and in-dialog requests go: response/request flows and Contact/URI helpers.

use crate::sip::Flow;
use crate::sip::message::SipRequest;

pub(super) fn format_host_port(addr: std::net::SocketAddr) -> String {
    // SocketAddr's Display already brackets IPv6.
    addr.to_string()
}

/// RFC 3261 §18.2.2 / RFC 3581: where a response to `req` goes. Over UDP: the source port
/// when `rport` was asked for, else the sent-by port at the source address.
pub(super) fn response_flow(req: &SipRequest, mut flow: Flow) -> Flow {
    if flow.is_reliable() {
        return flow;
    }
    if let Some(top) = req.vias.first()
        && top.rport.is_none()
    {
        flow.remote.set_port(top.port.unwrap_or(5060));
    }
    flow
}

/// Where requests we send inside the dialog go: over UDP the first Route, else the remote
/// target, when they name an IP address; otherwise back to where the INVITE came from.
/// Over TCP/TLS: the connection the INVITE came on.
pub(super) fn request_flow(remote_target: &str, req: &SipRequest, mut flow: Flow) -> Flow {
    if flow.is_reliable() {
        return flow;
    }
    let next_hop = match req.header_values("Record-Route").next() {
        Some(route) => contact_uri(route),
        None => remote_target.to_string(),
    };
    if let Some(addr) = uri_socket_addr(&next_hop) {
        flow.remote = addr;
    }
    flow
}

fn uri_socket_addr(uri: &str) -> Option<std::net::SocketAddr> {
    let parsed: ezk_sip_types::uri::SipUri = uri.parse().ok()?;
    let ip = parsed.host_port.ip()?;
    Some(std::net::SocketAddr::new(
        ip,
        parsed.host_port.port.unwrap_or(5060),
    ))
}

/// The URI of a Contact header value (`"name" <sip:..>;params` or `sip:..;params`).
pub(super) fn contact_uri(value: &str) -> String {
    let value = value.trim();
    if let (Some(start), Some(end)) = (value.find('<'), value.find('>'))
        && start < end
    {
        return value[start + 1..end].trim().to_string();
    }
    value.split(';').next().unwrap_or("").trim().to_string()
}

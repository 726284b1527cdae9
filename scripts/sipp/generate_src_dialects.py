#!/usr/bin/env python3
"""Writes the SRC dialect scenarios (uac_broadworks_siprec.xml, uac_siprec_metadata_update.xml,
uac_siprec_reinvite_metadata_only.xml, uac_cube_recording.xml, uac_cisco_bib.xml,
uac_genesys_per_party.xml) from the metadata documents in tests/data/siprec, so that the
scenarios and the parser unit tests send the same documents. Run it after changing either:
    python3 scripts/sipp/generate_src_dialects.py
"""
import os

os.chdir(os.path.dirname(os.path.abspath(__file__)))

def sdp(version, direction, labels=("1","2"), two=True, origin="SRC"):
    lines=["v=0",f"o={origin} 53655765 {version} IN IP[local_ip_type] [local_ip]","s=-","c=IN IP[media_ip_type] [media_ip]","t=0 0",
           "m=audio [media_port] RTP/AVP 0 101","a=rtpmap:0 PCMU/8000","a=rtpmap:101 telephone-event/8000",f"a={direction}"]
    if labels: lines.append(f"a=label:{labels[0]}")
    if two:
        lines+=["m=audio [media_port+2] RTP/AVP 0 101","a=rtpmap:0 PCMU/8000","a=rtpmap:101 telephone-event/8000",f"a={direction}"]
        if labels: lines.append(f"a=label:{labels[1]}")
    return lines

B="OSS-unique-boundary-42"
MP=f"multipart/mixed;boundary={B}"
def multipart(sdp_lines, meta, meta_type="application/rs-metadata+xml"):
    out=[]
    if sdp_lines is not None:
        out+=[f"--{B}","Content-Type: application/sdp",""]+sdp_lines
    out+=[f"--{B}",f"Content-Type: {meta_type}","Content-Disposition: recording-session",""]+meta.split("\n")+[f"--{B}--"]
    return out

SRC_FROM='<sip:siprec-src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]'
def req(method, cseq, body_lines, ctype, extra=(), to="[last_To:]", uri="sip:srs@[remote_ip]:[remote_port]", frm=SRC_FROM, contact="<sip:siprec-src@[local_ip]:[local_port];transport=[transport]>;+sip.src"):
    h=[f"{method} {uri} SIP/2.0","Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport",
       f"From: {frm}", to, "Call-ID: [call_id]", f"CSeq: {cseq} {method}",
       f"Contact: {contact}","Max-Forwards: 70"]
    h+=list(extra)
    if body_lines is None:
        h+=["Content-Length: 0"]
        return h
    h+=[f"Content-Type: {ctype}","Content-Length: [len]",""]+body_lines
    return h

def send(lines, retrans=True):
    body="\n".join("      "+l if l else "" for l in lines)
    r=' retrans="500"' if retrans else ''
    return f"""  <send{r}>
    <![CDATA[

{body}

    ]]>
  </send>

"""
def ack(cseq, body=None, **kw):
    return send(req("ACK", cseq, body, "application/sdp", **kw), retrans=False)

def expect(code=200, rtd=False):
    return f"""  <recv response="100" optional="true">
  </recv>

  <recv response="{code}"{' rtd="true"' if rtd else ''}>
  </recv>

"""
def pause(ms): return f'  <pause milliseconds="{ms}"/>\n\n'
STREAM="""  <nop>
    <action>
      <exec rtp_stream="tone440.wav,1,0"/>
    </action>
  </nop>

"""
def bye(cseq, **kw):
    return send(req("BYE",cseq,None,None, **kw)) + """  <recv response="200" crlf="true">
  </recv>

"""
def scenario(name, comment, body):
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">

<!-- {comment} -->
<scenario name="{name}">

{body}  <ResponseTimeRepartition value="10, 20, 50, 100, 200, 500, 1000"/>
  <CallLengthRepartition value="500, 1000, 2000, 5000"/>

</scenario>
"""
SIPREC_HDRS=["Require: siprec","Supported: timer","Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"]
TO0="To: <sip:srs@[remote_ip]:[remote_port]>"

D='../../tests/data/siprec/'
rd=lambda f: open(D+f).read().strip()

# 1. BroadWorks SIPREC with pause/resume
bw_initial, bw_3way = rd('broadworks_initial.xml'), rd('broadworks_3way.xml')
H=SIPREC_HDRS+["User-Agent: BroadWorks"]
LEGACY="application/rs-metadata"
body=send(req("INVITE",1,multipart(sdp(1,"sendonly",origin="BroadWorks"),bw_initial,LEGACY),MP,H,to=TO0))+expect(rtd=True)+ack(1)+STREAM+pause(1000)
body+=send(req("INVITE",2,multipart(sdp(2,"inactive",origin="BroadWorks"),bw_initial,LEGACY),MP,H))+expect()+ack(2)+pause(500)
body+=send(req("INVITE",3,multipart(sdp(3,"sendonly",origin="BroadWorks"),bw_3way,LEGACY),MP,H))+expect()+ack(3)+pause(1700)+bye(4)
open('uac_broadworks_siprec.xml','w').write(scenario("sip-recorder BroadWorks SIPREC pause/resume",
 """BroadWorks SIPREC SRC: INVITE with Require: siprec and a multipart body (SDP with two
     labelled m= lines + a <recording_metadata> document with broadWorksRecordingMetadata),
     3 s of 440 Hz on the first stream, a re-INVITE with a=inactive (pause) after 1 s, a
     re-INVITE with a=sendonly (resume) 0.5 s later whose metadata adds a third party
     (three-way call), BYE. The metadata parts use the legacy type application/rs-metadata.
     Ordinary ACK CSeq and tagged To.
     Run from scripts/sipp: sipp 127.0.0.1:5060 -sf uac_broadworks_siprec.xml -m 1 -i 127.0.0.1 -p 5070""", body))

# 2. metadata-only UPDATE adding a participant (Avaya SBCE)
av_initial, av_partial = rd('avaya_sbce_initial.xml'), rd('avaya_sbce_partial_join.xml')
H=SIPREC_HDRS+["User-Agent: Avaya SBCE"]
body=send(req("INVITE",1,multipart(sdp(1,"sendonly",origin="AvayaSBCE"),av_initial),MP,H,to=TO0))+expect(rtd=True)+ack(1)+STREAM+pause(1000)
body+=send(req("UPDATE",2,av_partial.split("\n"),"application/rs-metadata+xml",H+["Content-Disposition: recording-session"]))+"""  <recv response="200">
  </recv>

"""+pause(500)
# A truncated document: the call goes on, the raw text is kept.
broken=['<?xml version="1.0" encoding="UTF-8"?>','<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>partial</datamode><participant participant_id="dHJ1bmNhdGVk">']
body+=send(req("UPDATE",3,broken,"application/rs-metadata+xml",H+["Content-Disposition: recording-session"]))+"""  <recv response="200">
  </recv>

"""+pause(1600)+bye(4)
open('uac_siprec_metadata_update.xml','w').write(scenario("sip-recorder SIPREC metadata-only UPDATE",
 """SIPREC SRC in the Avaya SBCE shape: INVITE with SDP + RFC 7865 metadata (participant_id
     attributes, participantsessionassoc/participantstreamassoc), 3 s of 440 Hz, after 1 s an
     UPDATE whose only body is a partial metadata document (application/rs-metadata+xml,
     Content-Disposition: recording-session): a specialist joins, the customer leaves; 0.5 s
     later an UPDATE with a truncated document, which must not cost the call. BYE.""", body))

# 3. re-INVITE with multipart metadata and no SDP (Oracle SBC transfer)
or_initial, or_transfer = rd('oracle_sbc.xml'), rd('oracle_sbc_transfer.xml')
H=SIPREC_HDRS+["User-Agent: Oracle ESBC"]
labels=("33554433","33554434")
body=send(req("INVITE",1,multipart(sdp(1,"sendonly",labels=labels,origin="OracleSBC"),or_initial),MP,H,to=TO0))+expect(rtd=True)+ack(1)+STREAM+pause(1000)
body+=send(req("INVITE",2,multipart(None,or_transfer),MP,H))+expect()
# No SDP in the re-INVITE: the 200 carries the recorder's offer, the ACK the answer.
body+=ack(2, sdp(2,"sendonly",labels=labels,origin="OracleSBC"))+pause(2100)+bye(3)
open('uac_siprec_reinvite_metadata_only.xml','w').write(scenario("sip-recorder SIPREC re-INVITE with metadata and no SDP",
 """SIPREC SRC in the Oracle SBC shape: INVITE with SDP + metadata (id/session attributes,
     apkt extension data), 3 s of 440 Hz, after 1 s a re-INVITE whose multipart body holds
     only a complete metadata document (the far party was transferred) and no SDP: the
     recorder's 200 carries its current SDP as an offer, the ACK carries the answer. BYE.""", body))

# 4. Cisco CUBE network-based recording
CUBE_FROM="<sip:[local_ip]>;tag=[pid]SIPpTag00[call_number]"
H=["X-Cisco-Recording-Participant: sip:708090@10.42.30.5;media-index=\"0\"",
   "X-Cisco-Recording-Participant: sip:10000@10.42.30.32;media-index=\"1\"",
   "Supported: 100rel,timer,resource-priority,replaces,sdp-anat","Min-SE:  1800",
   "Cisco-Guid: 1334370502-1348997600-2396699092-3395863316","User-Agent: Cisco-SIPGateway/IOS-15.1.3.T",
   "Allow: INVITE, OPTIONS, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY, INFO, REGISTER"]
kw=dict(frm=CUBE_FROM, uri="sip:22222@[remote_ip]:[remote_port]", contact="<sip:[local_ip]:[local_port];transport=[transport]>")
body=send(req("INVITE",101,sdp(6906,"sendonly",labels=None,origin="CiscoSystemsSIP-GW-UserAgent"),"application/sdp",H,to="To: <sip:22222@[remote_ip]:[remote_port]>",**kw))+expect(rtd=True)
body+=ack(101,**kw)+STREAM+pause(3100)+bye(102,**kw)
open('uac_cube_recording.xml','w').write(scenario("sip-recorder Cisco CUBE network-based recording",
 """Cisco CUBE network-based recording (as in Cisco's CUBE guide): an INVITE without SIPREC
     metadata, two m= lines, and X-Cisco-Recording-Participant headers naming the party of
     each m= line by media-index. 3 s of 440 Hz on the first, BYE. Tagged To on ACK/BYE.""", body))

# 5. Cisco UCM built-in bridge: one dialog per party, correlated by From parameters.
BIB_FROM=("<sip:[field0]@[local_ip];x-[field1];x-refci=[field2];x-nearendclusterid=CUCM-Lab;"
          "x-nearenddevice=SEP00[field0];x-nearendaddr=[field0];x-farendrefci=[field3];"
          "x-farendclusterid=CUCM-Lab;x-farenddevice=SEP00[field4];x-farendaddr=[field4]>;tag=[pid]SIPpTag00[call_number]")
kw=dict(frm=BIB_FROM, uri="sip:7777@[remote_ip]:[remote_port]", contact="<sip:[field0]@[local_ip]:[local_port];transport=[transport]>")
H=["Supported: timer,resource-priority,replaces","User-Agent: Cisco-CUCM14.0","Allow: INVITE, OPTIONS, INFO, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY"]
body=send(req("INVITE",101,sdp(1,"sendonly",labels=None,two=False,origin="CiscoSystemsCCM-SIP"),"application/sdp",H,to="To: <sip:7777@[remote_ip]:[remote_port]>",**kw))+expect(rtd=True)
body+=ack(101,**kw)+STREAM+pause(3100)+bye(102,**kw)
open('uac_cisco_bib.xml','w').write(scenario("sip-recorder Cisco UCM built-in-bridge recording",
 """Cisco Unified CM built-in-bridge recording: one recording dialog per party. The From URI
     carries x-nearend or x-farend, x-refci (near-end call) and x-farendrefci (far-end call),
     as in Cisco's recording use-cases guide. Run with -inf cisco_bib_pairs.csv (one line per
     call: DN;nearend|farend;refci;farendrefci;far-end DN). 3 s of 440 Hz each, BYE.""", body))

# 6. Genesys one recording session per party
kw=dict(frm="<sip:gvp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]",
        uri="sip:record=[field0]@[remote_ip]:[remote_port];calluuid=[field1];dn=[field2];recordDN=[field3]",
        contact="<sip:gvp@[local_ip]:[local_port];transport=[transport]>")
H=["User-Agent: GenesysMediaServer","Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"]
body=send(req("INVITE",1,sdp(1,"sendonly",labels=None,two=False,origin="GMS"),"application/sdp",H,to="To: <sip:record=[field0]@[remote_ip]:[remote_port]>",**kw))+expect(rtd=True)
body+=ack(1,**kw)+STREAM+pause(3100)+bye(2,**kw)
open('uac_genesys_per_party.xml','w').write(scenario("sip-recorder Genesys one recording session per party",
 """Genesys Media Server configured for one recording session per party (seed 004): each
     party of a call gets its own INVITE, sip:record=ID;calluuid=CALL;dn=DN;recordDN=DN1, with
     one m= line. Run with -inf genesys_per_party.csv (ID;calluuid;dn;recordDN). 3 s of
     440 Hz each, BYE.""", body))

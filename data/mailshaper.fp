;
; mailshaper.fp - mailshaper's own TCP SYN signatures, in p0f 3 format
;
; Loaded before Debian's /etc/p0f/p0f.fp (see mailshaper-fingerprint(1)),
; so a specific signature here wins over p0f's generic ones for the same
; packet.  Matching semantics: doc/internals/matcher.md.  Format: p0f's
; docs/README, section 5.
;
; Every entry says where its facts come from.  Two kinds of source are used:
;   - documentation or source code that fixes a field (window, scale, option
;     order, TTL);
;   - public packet captures in which the exact signature was seen, named by
;     project and file.  "nDPI" is ntop/nDPI tests/cfgs/default/pcap/
;     (commit 3b1286ab03b0, LGPL-3.0); "ja4" is FoxIO-LLC/ja4 pcap/ (commit
;     0e54bc8371de).
; We only write what those sources support: where two systems cannot be told
; apart from the SYN, the label says so ("iOS or macOS").
;
; Order matters: the first exact specific match wins, so narrow signatures
; come before broad ones.  Keep the p0f rule that a signature may not repeat
; an earlier specific one in the same file.

classes = win,unix,other

[tcp:request]

; ---------------------------------------------------------------------------
; Windows 10 / 11 and Windows Server 2016 and later
;
; - TTL 128 and option order mss,nop,ws,nop,nop,sok (no timestamps by
;   default): unchanged since Vista, as in p0f's own "Windows 7 or 8".
; - Window 64240 = 44 x 1460: these releases start with a 64 KB receive
;   window rounded down to a multiple of the MSS, where Vista-8.1 sent 8192.
;   Seen in nDPI windowsupdate_over_http.pcap (a Windows Update client),
;   ja4 latest.pcapng and nDPI gnutella.pcap.
; - Window scale 8: receive window auto-tuning at its default "normal" level
;   (Microsoft Learn, "Description of Windows TCP features": netsh
;   autotuninglevel=normal uses scale factor 8).
; p0f 3.09b calls these the generic "Windows NT kernel".

label = s:win:Windows:10 or 11 (or Server 2016+)
sig   = *:128:0:*:mss*44,8:mss,nop,ws,nop,nop,sok:df,id+:0
sig   = *:128:0:*:64240,8:mss,nop,ws,nop,nop,sok:df,id+:0

; ---------------------------------------------------------------------------
; Linux 4.20 and later (5.x, 6.x): desktops, servers, most cloud hosts
;
; - Linux commit a337531b942b ("tcp: up initial rmem to 128KB and SYN rwin
;   to around 64KB", v4.20): tcp_rmem[1] became 131072, so
;   tcp_select_initial_window() (net/ipv4/tcp_output.c) offers 65536 bytes
;   rounded down to a multiple of the MSS: 64240 = 44 x 1460 on Ethernet
;   IPv4, 64800 = 45 x 1440 on Ethernet IPv6, 65320 = 46 x 1420 on a
;   1480-byte tunnel.  Before it, 87380-byte buffers gave 29200 = 20 x 1460
;   (p0f's "Linux 3.11 and newer").
; - Scale 7 comes from the default tcp_rmem[2] of 6 MB; larger buffers
;   (tuned servers) give 8 to 14.
; - Option order mss,sok,ts,nop,ws, TTL 64, DF with a non-zero IP ID on
;   IPv4 and an automatic flow label on IPv6 (auto_flowlabels, since 3.17):
;   same as p0f's Linux signatures.
; Seen in nDPI zabbix.pcap (a Zabbix server on Linux), nDPI sites.pcapng.

label = s:unix:Linux:4.20 and newer
sig   = *:64:0:*:mss*44,7:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*44,8:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*44,9:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*44,10:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*44,11:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*44,12:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*44,13:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*44,14:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*45,7:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*46,7:mss,sok,ts,nop,ws:df,id+:0
sig   = 6:64:0:*:mss*44,7:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:mss*45,7:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:mss*46,7:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:mss*45,8:mss,sok,ts,nop,ws:flow:0

; Timestamps turned off (net.ipv4.tcp_timestamps=0): the kernel then sends
; mss,nop,nop,sok,nop,ws (tcp_options_write() pads SACK-permitted and the
; window scale with NOPs).  Seen in ja4 https-connect.pcap.

label = s:unix:Linux:4.20 and newer (no timestamps)
sig   = *:64:0:*:mss*44,7:mss,nop,nop,sok,nop,ws:df,id+:0
sig   = 6:64:0:*:mss*45,7:mss,nop,nop,sok,nop,ws:flow:0

label = s:unix:Linux:3.x-4.19 (no timestamps)
sig   = *:64:0:*:mss*20,7:mss,nop,nop,sok,nop,ws:df,id+:0
sig   = *:64:0:*:mss*10,7:mss,nop,nop,sok,nop,ws:df,id+:0

; 3.x-4.19 over IPv6 with an automatic flow label: the same 87380-byte
; buffers as p0f's "3.11 and newer" (29200 = 20 x 1460 on IPv4), whose
; signatures have no 'flow' and so miss these.

label = s:unix:Linux:3.17-4.19
sig   = 6:64:0:*:mss*20,7:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:mss*30,7:mss,sok,ts,nop,ws:flow:0

; ---------------------------------------------------------------------------
; Android
;
; Android sets per-network TCP buffer sizes from config_tcp_buffers
; (AOSP frameworks/base/core/res/res/values/config.xml; applied by
; ConnectivityService to net.ipv4.tcp_rmem): a default of about 1 MB and a
; maximum of 4-8 MB on Wi-Fi and LTE.  With such a default,
; tcp_select_initial_window() caps the SYN window at 65535 before it can be
; rounded to the MSS, and an 8 MB maximum gives scale 8 (16 MB: 9).
; Desktop Linux, with its 128 KB default, never sends 65535.  A Linux host
; whose administrator raised tcp_rmem looks the same, hence the flavor.
; Seen in nDPI android.pcap (scale 8) and nDPI sites.pcapng (scale 9).

label = s:unix:Linux:Android (or raised tcp_rmem)
sig   = *:64:0:*:65535,8:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:65535,9:mss,sok,ts,nop,ws:df,id+:0
sig   = 6:64:0:*:65535,8:mss,sok,ts,nop,ws:flow:0
sig   = 6:64:0:*:65535,9:mss,sok,ts,nop,ws:flow:0

; ---------------------------------------------------------------------------
; iOS and macOS (XNU)
;
; XNU keeps the option layout p0f knows (mss,nop,ws,nop,nop,ts,sok,eol+1,
; window 65535) but current releases send DF with an IP ID of zero, which
; RFC 6864 allows for atomic datagrams, so p0f's "Mac OS X" signatures (with
; id+) only match fuzzily.  ECN is negotiated on the SYN on many connections
; (enabled by default since iOS 11 and macOS 10.13: Apple, WWDC 2017
; session 709 "Advances in Networking, Part 2").  Scale 6 or 7 follows
; kern.ipc.maxsockbuf.  We cannot tell iOS from macOS by the SYN.
; Seen in nDPI iphone.pcap (scale 7 and 6, with ecn), ja4
; macos_tcp_flags.pcap (scale 6, ecn) and nDPI opera-vpn.pcapng (scale 6).

label = s:unix:Apple:iOS or macOS
sig   = *:64:0:*:65535,5:mss,nop,ws,nop,nop,ts,sok,eol+1:df,ecn:0
sig   = *:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df,ecn:0
sig   = *:64:0:*:65535,7:mss,nop,ws,nop,nop,ts,sok,eol+1:df,ecn:0
sig   = *:64:0:*:65535,8:mss,nop,ws,nop,nop,ts,sok,eol+1:df,ecn:0
sig   = *:64:0:*:65535,5:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0
sig   = *:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0
sig   = *:64:0:*:65535,7:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0
sig   = *:64:0:*:65535,8:mss,nop,ws,nop,nop,ts,sok,eol+1:df:0
sig   = 6:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:flow:0
sig   = 6:64:0:*:65535,7:mss,nop,ws,nop,nop,ts,sok,eol+1:flow:0
sig   = 6:64:0:*:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1::0
sig   = 6:64:0:*:65535,7:mss,nop,ws,nop,nop,ts,sok,eol+1::0

; ---------------------------------------------------------------------------
; FreeBSD 13 and later
;
; tcp_addoptions() (sys/netinet/tcp_output.c) orders MSS, window scale
; (after a NOP), SACK-permitted and timestamps; net.inet.tcp.recvspace is
; 65536, offered as 65535; kern.ipc.maxsockbuf defaults to 2 MB, which
; needs scale 6 (65535 << 5 < 2 MB).  ECN is off on outgoing SYNs
; (net.inet.tcp.ecn.enable=2: server side only).  The SYN has not changed
; since 9.x, so the label keeps p0f's range open.

label = s:unix:FreeBSD:9.x-14.x
sig   = *:64:0:*:65535,6:mss,nop,ws,sok,ts:df,id+:0
sig   = 6:64:0:*:65535,6:mss,nop,ws,sok,ts::0

; ---------------------------------------------------------------------------
; Embedded Linux: BusyBox routers, cameras, set-top boxes, IoT
;
; These run 2.6.x-4.x kernels on 16-128 MB of RAM.  The kernel sizes
; tcp_rmem[2] from free memory (tcp_init() in net/ipv4/tcp.c), so the
; window scale is small (0-5) while the window keeps the 2.6 (5840 =
; 4 x 1460) or 3.x (14600 = 10 x 1460) defaults.  p0f has the 2.6 window
; only with scales 6-8 and 3.x only with 4-7.  Owned routers of this kind
; send much spam (see ../shared/DESIGN.md), so they get their own label.

label = s:unix:Linux:2.6.x-3.x (embedded, low memory)
sig   = *:64:0:*:mss*4,3:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*4,4:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*4,5:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*10,0:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*10,1:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*10,2:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*10,3:mss,sok,ts,nop,ws:df,id+:0
sig   = *:64:0:*:mss*4,2:mss,nop,nop,sok,nop,ws:df,id+:0
sig   = *:64:0:*:mss*10,2:mss,nop,nop,sok,nop,ws:df,id+:0

; ---------------------------------------------------------------------------
; Scanners (applications: label class '!', with the systems they run on)
;
; masscan: packets from its template in src/templ-pkt.c
; (robertdavidgraham/masscan): TTL 255, window 1024, no DF; version 1.0
; sends no TCP options, 1.3 adds a single MSS 1460 option.

label = s:!:masscan:SYN scan
sys   = @unix,@win
sig   = *:255:0:0:1024,0:::0
sig   = *:255:0:1460:1024,0:mss::0

; nmap -sS over IPv6 keeps its IPv4 probe (nmap's scan_engine_raw.cc:
; window 1024/2048/3072/4096, one MSS 1460 option), but p0f's own NMap
; signatures carry no 'flow' and nmap sets no flow label; they already
; cover it.  What p0f lacks is nmap's SYN scan with the MSS option
; dropped (--ip-options or --badsum runs, older 5.x releases):
; same windows, no options.

label = s:!:NMap:SYN scan (no options)
sys   = @unix,@win
sig   = *:64-:0:0:1024,0:::0
sig   = *:64-:0:0:2048,0:::0
sig   = *:64-:0:0:3072,0:::0
sig   = *:64-:0:0:4096,0:::0

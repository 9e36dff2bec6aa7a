package tdx

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/tdx/abi"
	"github.com/attestd/attestd/evidence/tpm/eventlog"
)

// CheckEventLog names a CCEL event log that does not parse or does not
// replay to the TD report's RTMRs.
const CheckEventLog evidence.Check = "tdx.event_log"

// The CCEL (the ACPI "Confidential Computing Event Log" of a TD) is a TCG2
// crypto-agile event log whose events name a TDX measurement register in
// the PCR index field: 0 is MRTD, 1..4 are RTMR0..3 (UEFI's
// EFI_CC_MR_INDEX). Guests expose the ACPI area whole, so the log is
// followed by unused bytes (0xff or zeros) that are not events.

// ccelLength returns the length of the TCG2 log at the start of b: the
// Spec ID header event, then every TCG_PCR_EVENT2 up to the first unused
// slot (index and type all ones, or all zeros) or the end of b. It reads
// only the lengths it needs (the digest sizes come from the Spec ID event)
// and never reads past b. go-attestation parses the events themselves;
// it cannot tell the log from the padding after it, hence this walk.
func ccelLength(b []byte) (int, error) {
	le := binary.LittleEndian
	// TCG_PCR_EVENT (SHA-1 format) header: index, type, SHA-1 digest, size, Spec ID event.
	if len(b) < 32 {
		return 0, errors.New("shorter than the Spec ID header event")
	}
	size := int(le.Uint32(b[28:]))
	if size < 28 || size > len(b)-32 {
		return 0, fmt.Errorf("Spec ID event size %d does not fit", size)
	}
	spec := b[32 : 32+size]
	if string(spec[:15]) != "Spec ID Event03" {
		return 0, errors.New("not a crypto-agile (TCG2) log: no Spec ID Event03")
	}
	n := int(le.Uint32(spec[24:]))
	if n < 1 || n > 8 || 28+4*n > len(spec) {
		return 0, fmt.Errorf("Spec ID event lists %d algorithms", n)
	}
	digestSize := map[uint16]int{}
	for i := 0; i < n; i++ {
		digestSize[le.Uint16(spec[28+4*i:])] = int(le.Uint16(spec[30+4*i:]))
	}
	off := 32 + size
	for off+12 <= len(b) {
		index, typ := le.Uint32(b[off:]), le.Uint32(b[off+4:])
		if (index == 0xffffffff && typ == 0xffffffff) || (index == 0 && typ == 0) {
			break
		}
		p := off + 8
		count := int(le.Uint32(b[p:]))
		p += 4
		if count < 1 || count > n {
			return 0, fmt.Errorf("event at offset %d has %d digests, the log declares %d algorithms", off, count, n)
		}
		for i := 0; i < count; i++ {
			if p+2 > len(b) {
				return 0, fmt.Errorf("event at offset %d is truncated", off)
			}
			ds, ok := digestSize[le.Uint16(b[p:])]
			if !ok {
				return 0, fmt.Errorf("event at offset %d uses algorithm %#x the log does not declare", off, le.Uint16(b[p:]))
			}
			p += 2 + ds
		}
		if p+4 > len(b) {
			return 0, fmt.Errorf("event at offset %d is truncated", off)
		}
		es := int(le.Uint32(b[p:]))
		p += 4
		if es < 0 || es > len(b)-p {
			return 0, fmt.Errorf("event at offset %d has data size %d beyond the log", off, es)
		}
		off = p + es
	}
	return off, nil
}

// ReplayCCEL replays a CCEL event log against the TD report's RTMR0..3
// (SHA-384, each starting at zero) with the event log replay of the TPM
// verifier (evidence/tpm/eventlog, go-attestation underneath), so TD events
// reach policies in the same JSON shape as TPM events. Event PCR numbers
// in the result are CC MR indices (1..4 = RTMR0..3). A log that does not
// parse, or does not reproduce every RTMR it measures into, is refused at
// CheckEventLog naming the registers.
func ReplayCCEL(log []byte, td *abi.TDReport) (*eventlog.Log, error) {
	if len(log) > eventlog.MaxLogSize {
		return nil, evidence.Errorf(CheckEventLog, "CCEL event log of %d bytes exceeds %d", len(log), eventlog.MaxLogSize)
	}
	n, err := ccelLength(log)
	if err != nil {
		return nil, evidence.Errorf(CheckEventLog, "CCEL event log: %v", err)
	}
	regs := make([]eventlog.PCR, 4)
	for i := range regs {
		regs[i] = eventlog.PCR{Index: i + 1, Alg: crypto.SHA384, Digest: td.RTMR[i][:]}
	}
	pl, err := eventlog.Parse(log[:n])
	if err != nil {
		return nil, evidence.Errorf(CheckEventLog, "CCEL event log: %v", err)
	}
	l, err := pl.Replay(regs)
	if err != nil {
		var re *eventlog.ReplayError
		if errors.As(err, &re) && len(re.InvalidPCRs) > 0 {
			var names []string
			for _, i := range re.InvalidPCRs {
				names = append(names, fmt.Sprintf("RTMR%d", i-1))
			}
			return nil, evidence.Errorf(CheckEventLog, "CCEL event log does not replay to %v of the TD report: %v", names, err)
		}
		return nil, evidence.Errorf(CheckEventLog, "CCEL event log: %v", err)
	}
	// The log is unsigned and Replay accepts a register without events
	// whatever its value: a log leaving out every event of RTMR0–2 (the
	// firmware's, the boot loader's, the kernel's) would replay, and a
	// policy reading "events" would see their absence. A non-zero RTMR0–2
	// must have events in the log. RTMR3 is exempt: it is extended at run
	// time (configfs-tsm, by applications) and logged by whatever extends
	// it, not in the firmware's CCEL; its value reaches policies as
	// tdx_rtmr3.
	measured, err := pl.Measured()
	if err != nil {
		return nil, evidence.Errorf(CheckEventLog, "CCEL event log: %v", err)
	}
	if bad := eventlog.Unexplained(measured, regs, func(i int) bool { return i == 4 }); bad != 0 {
		var names []string
		for i := 1; i <= 3; i++ {
			if bad&(1<<i) != 0 {
				names = append(names, fmt.Sprintf("RTMR%d", i-1))
			}
		}
		return nil, evidence.Errorf(CheckEventLog, "CCEL event log measures nothing into %v, which the TD report shows extended", names)
	}
	return l, nil
}

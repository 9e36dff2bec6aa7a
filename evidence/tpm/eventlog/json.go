package eventlog

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Event types whose data this package decodes (TCG PC Client Platform
// Firmware Profile §10.4.1).
const (
	evEventTag                       = 0x00000006
	evEFIVariableDriverConfig        = 0x80000001
	evEFIVariableBoot                = 0x80000002
	evEFIVariableAuthority           = 0x800000E0
	maxSIPADepth                     = 8
	sipaTypeMask              uint32 = 0x000F0000
	sipaContainer             uint32 = 0x00010000
)

// JSON returns the replayed events in the shape MAA policies query
// ({"Events":[{"EventSeq", "EventType", "EventTypeString", "PcrIndex",
// "Digest", "EventData", "ProcessedData"}]}), as compact JSON text: policies
// receive it as the string value of the "events" claim.
func (l *Log) JSON() (string, error) {
	type jsonEvent struct {
		EventSeq        int            `json:"EventSeq"`
		EventType       uint32         `json:"EventType"`
		EventTypeString string         `json:"EventTypeString"`
		PcrIndex        int            `json:"PcrIndex"`
		Digest          string         `json:"Digest"`
		EventData       string         `json:"EventData"`
		ProcessedData   map[string]any `json:"ProcessedData"`
	}
	out := struct {
		Events []jsonEvent `json:"Events"`
	}{Events: []jsonEvent{}}
	for _, e := range l.Events {
		out.Events = append(out.Events, jsonEvent{
			EventSeq: e.Seq, EventType: e.Type, EventTypeString: e.TypeName(), PcrIndex: e.PCR,
			Digest: hex.EncodeToString(e.Digest), EventData: base64.RawURLEncoding.EncodeToString(e.Data),
			ProcessedData: ProcessedData(e.Type, e.Data),
		})
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// ProcessedData decodes the data of the event types policies look into:
// UEFI variables (VariableGuid, UnicodeName, VariableData) and Windows SIPA
// tagged events (EVENT_* members, nested as the containers nest). Data it
// cannot decode gives an empty object: the raw bytes stay in EventData.
func ProcessedData(typ uint32, data []byte) map[string]any {
	switch typ {
	case evEFIVariableDriverConfig, evEFIVariableBoot, evEFIVariableAuthority:
		if v, err := parseUEFIVariable(data); err == nil {
			return v
		}
	case evEventTag:
		if v, err := ParseSIPA(data); err == nil {
			return v
		}
	}
	return map[string]any{}
}

// parseUEFIVariable parses UEFI_VARIABLE_DATA (PC Client PFP §10.4.1):
// VariableName GUID (16), UnicodeNameLength (u64, in UTF-16 units),
// VariableDataLength (u64), UnicodeName, VariableData.
func parseUEFIVariable(b []byte) (map[string]any, error) {
	if len(b) < 32 {
		return nil, fmt.Errorf("UEFI_VARIABLE_DATA: %d bytes, want at least 32", len(b))
	}
	le := binary.LittleEndian
	nameLen, dataLen := le.Uint64(b[16:]), le.Uint64(b[24:])
	if nameLen > uint64(len(b)) || dataLen > uint64(len(b)) || 32+2*nameLen+dataLen != uint64(len(b)) {
		return nil, fmt.Errorf("UEFI_VARIABLE_DATA: lengths %d/%d do not match %d bytes", nameLen, dataLen, len(b))
	}
	name := decodeUTF16(b[32 : 32+2*nameLen])
	return map[string]any{
		"VariableGuid": guidString(b[:16]),
		"UnicodeName":  name,
		"VariableData": base64.RawURLEncoding.EncodeToString(b[32+2*nameLen:]),
	}, nil
}

// guidString renders an EFI_GUID in its registry form (first three fields
// little-endian), upper case as MAA's sample policies spell them.
func guidString(g []byte) string {
	le := binary.LittleEndian
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(g[0:]), le.Uint16(g[4:]), le.Uint16(g[6:]), g[8:10], g[10:16]))
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, binary.LittleEndian.Uint16(b[i:]))
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

// sipaKind says how to render a SIPA event's value.
type sipaKind int

const (
	kindRaw     sipaKind = iota // {"RawData": b64url}
	kindBool                    // true/false
	kindValue                   // {"Value": n}
	kindNumber                  // n
	kindString                  // UTF-16LE text
	kindList                    // always an array, even with one member
	kindBitlock                 // {"String": …, "Value": n}
)

// sipaNames maps Windows SIPA event IDs (wbcl.h; the same table
// go-attestation's win_events.go uses) to MAA's EVENT_* names and how their
// values render.
var sipaNames = map[uint32]struct {
	name string
	kind sipaKind
}{
	0x40010001: {"EVENT_TRUSTBOUNDARY", kindRaw},
	0x40010002: {"EVENT_ELAM_AGGREGATION", kindList},
	0x40010003: {"EVENT_LOADEDMODULE_AGGREGATION", kindList},
	0xC0010004: {"EVENT_TRUSTPOINT_AGGREGATION", kindList},
	0x40010005: {"EVENT_KSR_AGGREGATION", kindList},
	0x40010006: {"EVENT_KSR_SIGNED_MEASUREMENT_AGGREGATION", kindList},
	0x00020001: {"EVENT_INFORMATION", kindRaw},
	0x00020002: {"EVENT_BOOTCOUNTER", kindNumber},
	0x00020003: {"EVENT_TRANSFER_CONTROL", kindValue},
	0x00020004: {"EVENT_APPLICATION_RETURN", kindValue},
	0x00020005: {"EVENT_BITLOCKER_UNLOCK", kindBitlock},
	0x00020006: {"EVENT_EVENTCOUNTER", kindNumber},
	0x00020007: {"EVENT_COUNTERID", kindNumber},
	0x00020008: {"EVENT_MORBIT_NOT_CANCELABLE", kindBool},
	0x00020009: {"EVENT_APPLICATION_SVN", kindNumber},
	0x0002000A: {"EVENT_SVN_CHAIN_STATUS", kindValue},
	0x0002000B: {"EVENT_MORBIT_API_STATUS", kindValue},
	0x00040001: {"EVENT_BOOTDEBUGGING", kindBool},
	0x00040002: {"EVENT_BOOT_REVOCATION_LIST", kindRaw},
	0x00050001: {"EVENT_OSKERNELDEBUG", kindBool},
	0x00050002: {"EVENT_CODEINTEGRITY", kindBool},
	0x00050003: {"EVENT_TESTSIGNING", kindBool},
	0x00050004: {"EVENT_DATAEXECUTIONPREVENTION", kindValue},
	0x00050005: {"EVENT_SAFEMODE", kindBool},
	0x00050006: {"EVENT_WINPE", kindBool},
	0x00050007: {"EVENT_PHYSICALADDRESSEXTENSION", kindBool},
	0x00050008: {"EVENT_OSDEVICE", kindValue},
	0x00050009: {"EVENT_SYSTEMROOT", kindString},
	0x0005000A: {"EVENT_HYPERVISOR_LAUNCH_TYPE", kindValue},
	0x0005000B: {"EVENT_HYPERVISOR_PATH", kindString},
	0x0005000C: {"EVENT_HYPERVISOR_IOMMU_POLICY", kindValue},
	0x0005000D: {"EVENT_HYPERVISOR_DEBUG", kindBool},
	0x0005000E: {"EVENT_DRIVER_LOAD_POLICY", kindValue},
	0x0005000F: {"EVENT_SI_POLICY", kindList},
	0x00050010: {"EVENT_HYPERVISOR_MMIO_NX_POLICY", kindValue},
	0x00050011: {"EVENT_HYPERVISOR_MSR_FILTER_POLICY", kindValue},
	0x00050012: {"EVENT_VSM_LAUNCH_TYPE", kindValue},
	0x00050013: {"EVENT_OS_REVOCATION_LIST", kindRaw},
	0x00050020: {"EVENT_VSM_IDK_INFO", kindRaw},
	0x00050021: {"EVENT_FLIGHTSIGNING", kindBool},
	0x00050022: {"EVENT_PAGEFILE_ENCRYPTION_ENABLED", kindBool},
	0x00050023: {"EVENT_VSM_IDKS_INFO", kindRaw},
	0x00050024: {"EVENT_HIBERNATION_DISABLED", kindBool},
	0x00050025: {"EVENT_DUMPS_DISABLED", kindBool},
	0x00050026: {"EVENT_DUMP_ENCRYPTION_ENABLED", kindBool},
	0x00050027: {"EVENT_DUMP_ENCRYPTION_KEY_DIGEST", kindRaw},
	0x00050028: {"EVENT_LSAISO_CONFIG", kindValue},
	0x00060001: {"EVENT_NOAUTHORITY", kindRaw},
	0x00060002: {"EVENT_AUTHORITYPUBKEY", kindRaw},
	0x00070001: {"EVENT_FILEPATH", kindString},
	0x00070002: {"EVENT_IMAGESIZE", kindNumber},
	0x00070003: {"EVENT_HASHALGORITHMID", kindNumber},
	0x00070004: {"EVENT_AUTHENTICODEHASH", kindRaw},
	0x00070005: {"EVENT_AUTHORITYISSUER", kindString},
	0x00070006: {"EVENT_AUTHORITYSERIAL", kindRaw},
	0x00070007: {"EVENT_IMAGEBASE", kindNumber},
	0x00070008: {"EVENT_AUTHORITYPUBLISHER", kindString},
	0x00070009: {"EVENT_AUTHORITYSHA1THUMBPRINT", kindRaw},
	0x0007000A: {"EVENT_IMAGEVALIDATED", kindBool},
	0x0007000B: {"EVENT_MODULE_SVN", kindNumber},
	0x00090001: {"EVENT_ELAM_KEYNAME", kindString},
	0x00090002: {"EVENT_ELAM_CONFIGURATION", kindRaw},
	0x00090003: {"EVENT_ELAM_POLICY", kindRaw},
	0x00090004: {"EVENT_ELAM_MEASURED", kindRaw},
	0x000A0001: {"EVENT_VBS_VSM_REQUIRED", kindBool},
	0x000A0002: {"EVENT_VBS_SECUREBOOT_REQUIRED", kindBool},
	0x000A0003: {"EVENT_VBS_IOMMU_REQUIRED", kindBool},
	0x000A0004: {"EVENT_VBS_MMIO_NX_REQUIRED", kindBool},
	0x000A0005: {"EVENT_VBS_MSR_FILTERING_REQUIRED", kindBool},
	0x000A0006: {"EVENT_VBS_MANDATORY_ENFORCEMENT", kindBool},
	0x000A0007: {"EVENT_VBS_HVCI_POLICY", kindValue},
	0x000A0008: {"EVENT_VBS_MICROSOFT_BOOT_CHAIN_REQUIRED", kindBool},
}

// bitlockerNames are the single-flag BitLocker unlock states (FVEB_UNLOCK_FLAG_*).
var bitlockerNames = map[uint64]string{0: "NONE", 1: "CACHED", 2: "MEDIA", 4: "TPM", 0x10: "PIN", 0x20: "EXTERNAL", 0x40: "RECOVERY", 0x80: "PASSPHRASE", 0x100: "NBP"}

// ParseSIPA decodes the data of a Windows EV_EVENT_TAG event: a
// TCG_PCClientTaggedEvent whose ID is a SIPA container and whose data is a
// sequence of SIPA events {u32 type, u32 size, data}. Containers nest.
func ParseSIPA(b []byte) (map[string]any, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("tagged event: %d bytes, want at least 8", len(b))
	}
	id, size := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
	if uint64(size) != uint64(len(b)-8) {
		return nil, fmt.Errorf("tagged event: size %d with %d bytes of data", size, len(b)-8)
	}
	if id&sipaTypeMask != sipaContainer {
		return nil, fmt.Errorf("tagged event: ID %#x is not a SIPA container", id)
	}
	inner, err := parseSIPAItems(b[8:], 0)
	if err != nil {
		return nil, err
	}
	return map[string]any{sipaName(id): inner}, nil
}

func sipaName(id uint32) string {
	if n, ok := sipaNames[id]; ok {
		return n.name
	}
	return fmt.Sprintf("EVENT_%08X", id)
}

func parseSIPAItems(b []byte, depth int) (map[string]any, error) {
	if depth > maxSIPADepth {
		return nil, fmt.Errorf("SIPA containers nest deeper than %d", maxSIPADepth)
	}
	out := map[string]any{}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("SIPA event: %d trailing bytes", len(b))
		}
		typ, size := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if uint64(size) > uint64(len(b)-8) {
			return nil, fmt.Errorf("SIPA event %#x: size %d with %d bytes left", typ, size, len(b)-8)
		}
		data := b[8 : 8+size]
		b = b[8+size:]
		info, known := sipaNames[typ]
		name := sipaName(typ)
		var v any
		if typ&sipaTypeMask == sipaContainer {
			inner, err := parseSIPAItems(data, depth+1)
			if err != nil {
				return nil, err
			}
			v = inner
		} else {
			v = sipaValue(info.kind, data)
		}
		if known && info.kind == kindList {
			l, _ := out[name].([]any)
			out[name] = append(l, v)
			continue
		}
		if prev, dup := out[name]; dup {
			if l, ok := prev.([]any); ok {
				out[name] = append(l, v)
			} else {
				out[name] = []any{prev, v}
			}
			continue
		}
		out[name] = v
	}
	return out, nil
}

func sipaValue(kind sipaKind, data []byte) any {
	n, isNum := leUint(data)
	switch kind {
	case kindBool:
		if isNum {
			return n != 0
		}
	case kindValue:
		if isNum {
			return map[string]any{"Value": n}
		}
	case kindNumber:
		if isNum {
			return n
		}
	case kindBitlock:
		if isNum {
			m := map[string]any{"Value": n}
			if s, ok := bitlockerNames[n]; ok {
				m["String"] = s
			}
			return m
		}
	case kindString:
		if len(data)%2 == 0 {
			return decodeUTF16(data)
		}
	}
	return map[string]any{"RawData": base64.RawURLEncoding.EncodeToString(data)}
}

func leUint(b []byte) (uint64, bool) {
	switch len(b) {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)), true
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), true
	case 8:
		return binary.LittleEndian.Uint64(b), true
	}
	return 0, false
}

// WindowsFlags are the boot properties MAA's TPM claims derive from a
// Windows log: each "Seen" flag is whether the log measured the property at
// all, so a Linux log yields no Windows claims.
type WindowsFlags struct {
	Seen              bool // any SIPA event replayed
	BootDebugging     bool // EVENT_BOOTDEBUGGING true anywhere
	SafeMode          bool // EVENT_SAFEMODE true anywhere
	WinPE             bool // EVENT_WINPE true anywhere
	VSMRequired       bool // EVENT_VBS_VSM_REQUIRED true, or EVENT_VSM_LAUNCH_TYPE ≠ 0
	IOMMURequired     bool // EVENT_VBS_IOMMU_REQUIRED true, or EVENT_HYPERVISOR_IOMMU_POLICY ≠ 0
	KernelDebug       bool // EVENT_OSKERNELDEBUG true anywhere
	TestSigning       bool // EVENT_TESTSIGNING true anywhere
	CodeIntegrityOff  bool // EVENT_CODEINTEGRITY false anywhere
	CodeIntegritySeen bool
}

// WindowsFlags scans the replayed EV_EVENT_TAG events of PCRs 12–14 (where
// Windows' boot manager and loader measure their SIPA data).
func (l *Log) WindowsFlags() WindowsFlags {
	var f WindowsFlags
	var walk func(m map[string]any, depth int)
	walk = func(m map[string]any, depth int) {
		if depth > maxSIPADepth {
			return
		}
		for k, v := range m {
			vals, ok := v.([]any)
			if !ok {
				vals = []any{v}
			}
			for _, x := range vals {
				b, isBool := x.(bool)
				val := uint64(0)
				if mv, ok := x.(map[string]any); ok {
					if n, ok := mv["Value"].(uint64); ok {
						val = n
					} else {
						walk(mv, depth+1)
					}
				}
				switch k {
				case "EVENT_BOOTDEBUGGING":
					f.BootDebugging = f.BootDebugging || (isBool && b)
				case "EVENT_SAFEMODE":
					f.SafeMode = f.SafeMode || (isBool && b)
				case "EVENT_WINPE":
					f.WinPE = f.WinPE || (isBool && b)
				case "EVENT_OSKERNELDEBUG":
					f.KernelDebug = f.KernelDebug || (isBool && b)
				case "EVENT_TESTSIGNING":
					f.TestSigning = f.TestSigning || (isBool && b)
				case "EVENT_CODEINTEGRITY":
					f.CodeIntegritySeen = true
					f.CodeIntegrityOff = f.CodeIntegrityOff || (isBool && !b)
				case "EVENT_VBS_VSM_REQUIRED":
					f.VSMRequired = f.VSMRequired || (isBool && b)
				case "EVENT_VSM_LAUNCH_TYPE":
					f.VSMRequired = f.VSMRequired || val != 0
				case "EVENT_VBS_IOMMU_REQUIRED":
					f.IOMMURequired = f.IOMMURequired || (isBool && b)
				case "EVENT_HYPERVISOR_IOMMU_POLICY":
					f.IOMMURequired = f.IOMMURequired || val != 0
				}
			}
		}
	}
	for _, e := range l.Events {
		if e.Type != evEventTag || e.PCR < 12 || e.PCR > 14 {
			continue
		}
		m, err := ParseSIPA(e.Data)
		if err != nil {
			continue
		}
		f.Seen = true
		walk(m, 0)
	}
	return f
}

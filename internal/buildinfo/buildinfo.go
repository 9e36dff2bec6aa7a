// Package buildinfo reports which attestd this binary is, from the build
// information the Go toolchain embeds (debug.ReadBuildInfo): no version
// string is maintained by hand, so it cannot drift from the source.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is the build of the running binary.
type Info struct {
	// Version is the main module's version: a tag for "go install
	// …@vX.Y.Z", "(devel)" for a build of a work tree.
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"` // VCS commit
	Time      string `json:"time,omitempty"`     // commit time, RFC 3339
	Modified  bool   `json:"modified,omitempty"` // the work tree had changes
	GoVersion string `json:"goVersion"`          // toolchain
	Platform  string `json:"platform"`           // GOOS/GOARCH
	Module    string `json:"module,omitempty"`   // main module path
}

// Read returns the build information of the running binary.
func Read() Info {
	in := Info{Version: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	in.Version, in.Module = bi.Main.Version, bi.Main.Path
	if in.Version == "" {
		in.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the one-line form "attestd VERSION (REVISION[+dirty], TIME) GO OS/ARCH".
func (in Info) String() string {
	s := "attestd " + in.Version
	if in.Revision != "" {
		rev := in.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if in.Modified {
			rev += "+dirty"
		}
		if in.Time != "" {
			rev += ", " + in.Time
		}
		s += " (" + rev + ")"
	}
	return fmt.Sprintf("%s %s %s", s, in.GoVersion, in.Platform)
}

// Short is Version plus the abbreviated revision, for metric labels.
func (in Info) Short() string {
	if len(in.Revision) >= 12 {
		return in.Version + "+" + in.Revision[:12]
	}
	return in.Version
}

// Package pgtest runs a throw-away PostgreSQL server for tests of attestd's
// PostgreSQL backend and of the server running on it.
//
// Start either uses the server named by ATTESTD_TEST_POSTGRES_DSN (a role
// allowed to CREATE DATABASE) or creates one with the local PostgreSQL
// binaries: initdb in a fresh temporary directory, then pg_ctl start on a
// free loopback port with its Unix socket in that directory. PostgreSQL
// refuses to run as root, so under root both run as the "postgres" user via
// runuser. Every test gets its own database (NewDatabase), dropped at the end
// of the test, so tests never see each other's rows.
//
// Without binaries or DSN, Require skips the test with the reason, except
// under CI=true, where a silently skipped backend would hide breakage: there
// it fails.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// EnvDSN names an existing server to use instead of starting one.
const EnvDSN = "ATTESTD_TEST_POSTGRES_DSN"

// Server is a PostgreSQL server databases can be created on.
type Server struct {
	dsn   string  // administrative DSN (database "postgres" or the env one)
	admin *sql.DB // connection used to create and drop databases
	dir   string  // data directory when started here, else ""
	bin   string  // directory of pg_ctl when started here
	owner string  // user the server runs as ("" = the current user)
	n     atomic.Int64

	// watchdog stops the server and removes dir once watchIn is closed:
	// by release, or by the kernel when the test process dies without
	// Stop (a panicking test skips TestMain's Stop, a -timeout panic every
	// cleanup), so no server outlives the tests that started it.
	watchdog *exec.Cmd
	watchIn  io.WriteCloser
}

// ErrUnavailable is returned by Start when there is neither a DSN nor the
// PostgreSQL server binaries.
var ErrUnavailable = errors.New("pgtest: no PostgreSQL: set " + EnvDSN + " or install the PostgreSQL server (initdb, pg_ctl, postgres)")

// Require fails the test under CI=true, and skips it otherwise, when err
// says PostgreSQL is unavailable; any other error fails the test.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
		t.Skip(err)
		return
	}
	t.Fatal(err)
}

// BinDir finds the directory holding initdb and pg_ctl: $PATH, then
// `pg_config --bindir`, then /usr/lib/postgresql/*/bin (Debian's layout,
// which does not put the server binaries on $PATH).
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	var cands []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	cands = append(cands, globbed...)
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", ErrUnavailable
}

// Start returns a server: the one of ATTESTD_TEST_POSTGRES_DSN, or a new
// one in a temporary directory (stopped and removed by Stop).
func Start(ctx context.Context) (*Server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		// pgx quotes an unparsable DSN with best-effort redaction only,
		// and this one is often a CI secret that test logs would show.
		if _, err := pgx.ParseConfig(dsn); err != nil {
			return nil, fmt.Errorf("pgtest: %s does not parse as a PostgreSQL DSN (details withheld: they would quote it, password included)", EnvDSN)
		}
		s := &Server{dsn: dsn}
		if err := s.connect(ctx); err != nil {
			return nil, fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
		}
		return s, nil
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		s.owner = "postgres"
	}
	if err := s.initdb(ctx); err != nil {
		s.removeDir()
		return nil, err
	}
	// The port is picked free, then bound by postgres a moment later;
	// another process may take it in between, so retry a few times.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			s.removeDir()
			return nil, err
		}
		err = s.run(ctx, filepath.Join(bin, "pg_ctl"), "-D", s.dir, "-w", "-t", "30", "-l", filepath.Join(s.dir, "server.log"),
			"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", port, s.dir), "start")
		if err == nil {
			s.dsn = fmt.Sprintf("postgres://attestd@127.0.0.1:%d/postgres?sslmode=disable", port)
			break
		}
		if attempt == 2 {
			logTail, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			s.removeDir()
			return nil, fmt.Errorf("pgtest: pg_ctl start: %w\n%s", err, logTail)
		}
	}
	if err := s.connect(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) initdb(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "attestd-pg-")
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.dir = dir
	if s.owner != "" {
		u, err := user.Lookup(s.owner)
		if err != nil {
			return fmt.Errorf("pgtest: running as root needs the %q user to run PostgreSQL: %w", s.owner, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := s.startWatchdog(); err != nil {
		return err
	}
	if err := s.run(ctx, filepath.Join(s.bin, "initdb"), "-D", dir, "-A", "trust", "-U", "attestd", "-E", "UTF8", "--no-sync"); err != nil {
		return fmt.Errorf("pgtest: initdb: %w", err)
	}
	return nil
}

// startWatchdog starts a shell that waits for EOF on its stdin, whose
// write end only this process holds, then stops the server in s.dir (if one
// runs) and removes the directory. It has its own process group, so a
// Ctrl-C to the test does not kill it before it has cleaned up.
func (s *Server) startWatchdog() error {
	stop := []string{filepath.Join(s.bin, "pg_ctl"), "-D", s.dir, "-m", "immediate", "-w", "stop"}
	if s.owner != "" {
		stop = append([]string{runuser(), "-u", s.owner, "--"}, stop...)
	}
	const script = `d="$1"; shift; cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$d"`
	cmd := exec.Command("sh", append([]string{"-c", script, "pgtest-watchdog", s.dir}, stop...)...)
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("pgtest: watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: watchdog: %w", err)
	}
	s.watchdog, s.watchIn = cmd, in
	return nil
}

// release lets the watchdog run (stop the server if it still runs, remove
// the directory) and waits for it.
func (s *Server) release() {
	if s.watchIn == nil {
		return
	}
	s.watchIn.Close()
	s.watchdog.Wait() //nolint:errcheck // the watchdog's own failures leave nothing to report
	s.watchIn, s.watchdog = nil, nil
}

// run runs a PostgreSQL binary as the server's owner.
func (s *Server) run(ctx context.Context, name string, args ...string) error {
	if s.owner != "" {
		args = append([]string{"-u", s.owner, "--", name}, args...)
		name = runuser()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = os.TempDir() // the owner may not be allowed into the current directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runuser finds runuser(1), which lives in sbin, often off a test's $PATH.
func runuser() string {
	if p, err := exec.LookPath("runuser"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "runuser"
}

func (s *Server) connect(ctx context.Context) error {
	db, err := sql.Open("pgx", s.dsn)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connect: %w", err)
	}
	s.admin = db
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) removeDir() {
	s.release()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// Stop stops a server started here and removes its directory; for the
// DSN server it only closes the administrative connection.
func (s *Server) Stop() error {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.dir == "" {
		return nil
	}
	defer s.removeDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.run(ctx, filepath.Join(s.bin, "pg_ctl"), "-D", s.dir, "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w", err)
	}
	return nil
}

// NewDatabase creates an empty database for t and returns its DSN; the
// database is dropped when t ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("attestd_test_%d_%d", os.Getpid(), s.n.Add(1))
	ctx := context.Background()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// WITH (FORCE) ends sessions a failed test left open (PostgreSQL 13+).
		if _, err := s.admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(s.dsn, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// withDatabase returns dsn (URL or keyword/value form) naming database db.
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// url.Error quotes the whole URL, password included.
			return "", errors.New("pgtest: the server's DSN does not parse as a URL")
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	// In keyword/value form a later keyword overrides an earlier one.
	return dsn + " dbname=" + db, nil
}

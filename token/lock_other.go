//go:build !unix

package token

// lockDir is a no-op where flock is unavailable: there, only one process
// may manage a key directory at a time.
func lockDir(dir string) (func(), error) { return func() {}, nil }

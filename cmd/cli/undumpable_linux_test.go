package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A child of millrace running as millrace's user (not root) cannot read
// millrace's environment in /proc once millrace called undumpable; it can
// without. The test re-runs its own binary as user nobody: as root, /proc
// is readable whatever the flag.
func TestUndumpable_hides_the_environment_from_children(t *testing.T) {
	if os.Getenv("MILLRACE_UNDUMPABLE_CHILD") != "" {
		undumpableChild()
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the test as another user (nobody)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "cli.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		undumpable string
		want       string
	}{{"", "canary-env-5d2"}, {"1", "Permission denied"}} {
		cmd := exec.Command(bin, "-test.run", "^TestUndumpable_hides_the_environment_from_children$")
		cmd.Env = []string{"MILLRACE_UNDUMPABLE_CHILD=1", "MILLRACE_UNDUMPABLE=" + c.undumpable, "SECRET=canary-env-5d2", "PATH=" + os.Getenv("PATH")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), c.want) {
			t.Errorf("undumpable %q: the child's read of /proc/<parent>/environ gave %q, want %q", c.undumpable, out, c.want)
		}
	}
}

// undumpableChild marks itself undumpable if asked, then has cat read its
// environment through /proc, as an exec stage's program could.
func undumpableChild() {
	if os.Getenv("MILLRACE_UNDUMPABLE") != "" {
		if err := undumpable(); err != nil {
			os.Stdout.WriteString("undumpable: " + err.Error())
			os.Exit(1)
		}
	}
	cmd := exec.Command("cat", "/proc/"+itoa(os.Getpid())+"/environ")
	out, err := cmd.CombinedOutput()
	os.Stdout.Write(out)
	if err != nil {
		os.Stdout.WriteString(err.Error())
	}
	os.Exit(0)
}

func itoa(n int) string { return strconv.Itoa(n) }

package skew

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testRepo is a throwaway git repository in a temporary directory.
type testRepo struct {
	t   *testing.T
	dir string
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("skipping: git is not installed")
	}
	r := &testRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

// git runs a git command in the repository, ignoring the user's and the
// system's configuration.
func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Bosun", "GIT_AUTHOR_EMAIL=ci@bosun.dev", "GIT_COMMITTER_NAME=Bosun", "GIT_COMMITTER_EMAIL=ci@bosun.dev")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes content to file "release" and commits it, tagging the
// commit with tags; it returns the commit's hash.
func (r *testRepo) commit(content string, tags ...string) string {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, "release"), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("add", "release")
	r.git("commit", "-q", "-m", content)
	for i, tag := range tags {
		if i%2 == 0 {
			r.git("tag", tag) // lightweight
		} else {
			r.git("tag", "-a", "-m", tag, tag) // annotated: the tag object is not the commit
		}
	}
	return r.git("rev-parse", "HEAD")
}

func TestFindBaselineTags(t *testing.T) {
	r := newTestRepo(t)
	c1 := r.commit("one", "v0.1.0")
	c2 := r.commit("two", "v0.3.0-rc.1", "not-a-release")
	c3 := r.commit("three", "v0.3.0")
	r.git("branch", "side")
	c4 := r.commit("four", "v0.9.0", "v0.10.0")
	c5 := r.commit("five")
	r.git("checkout", "-q", "side")
	r.commit("side", "v9.0.0") // not reachable from main
	r.git("checkout", "-q", "main")

	ctx := context.Background()
	for _, tc := range []struct {
		head, want, name, why string
	}{
		{c5, c4, "v0.10.0", "the newest reachable tag, by version order (v0.10.0 after v0.9.0)"},
		{c4, c3, "v0.3.0", "tags on HEAD itself are skipped, and a release sorts after its pre-release"},
		{c3, c2, "v0.3.0-rc.1", "a pre-release is a previous release too"},
		{c2, c1, "v0.1.0", "tags not matching v* are ignored"},
	} {
		r.git("checkout", "-q", "--detach", tc.head)
		b, err := FindBaseline(ctx, r.dir, "")
		if err != nil {
			t.Fatalf("HEAD %.7s: %v", tc.head, err)
		}
		if b.Commit != tc.want || b.Name != tc.name || b.Head != tc.head {
			t.Errorf("HEAD %.7s: baseline %s (HEAD %.7s), want %s (%.7s): %s", tc.head, b, b.Head, tc.name, tc.want, tc.why)
		}
	}

	r.git("checkout", "-q", "--detach", c1)
	if b, err := FindBaseline(ctx, r.dir, ""); !errors.Is(err, ErrNoBaseline) {
		t.Errorf("HEAD at the first commit, tagged: got %s, %v; want ErrNoBaseline", b, err)
	}
}

func TestFindBaselineParent(t *testing.T) {
	r := newTestRepo(t)
	c1 := r.commit("one")
	ctx := context.Background()
	if b, err := FindBaseline(ctx, r.dir, ""); !errors.Is(err, ErrNoBaseline) {
		t.Errorf("one commit, no tags: got %s, %v; want ErrNoBaseline", b, err)
	}
	r.commit("two")
	b, err := FindBaseline(ctx, r.dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if b.Commit != c1 || b.Name != "HEAD^" {
		t.Errorf("no tags: baseline %s, want HEAD^ (%.7s)", b, c1)
	}
}

func TestFindBaselineShallow(t *testing.T) {
	r := newTestRepo(t)
	r.commit("one", "v0.1.0")
	r.commit("two")
	r.commit("three")
	clone := &testRepo{t: t, dir: filepath.Join(t.TempDir(), "clone")}
	r.git("clone", "-q", "--depth", "1", "file://"+r.dir, clone.dir)
	_, err := FindBaseline(context.Background(), clone.dir, "")
	if !errors.Is(err, ErrNoBaseline) || !strings.Contains(err.Error(), "shallow") {
		t.Errorf("shallow clone: got %v, want ErrNoBaseline saying it is shallow", err)
	}
}

func TestFindBaselineOverride(t *testing.T) {
	r := newTestRepo(t)
	c1 := r.commit("one", "v0.1.0")
	r.commit("two", "v0.2.0")
	r.commit("three")
	ctx := context.Background()
	b, err := FindBaseline(ctx, r.dir, "v0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if b.Commit != c1 || b.Name != "v0.1.0" {
		t.Errorf("override v0.1.0: baseline %s, want v0.1.0 (%.7s)", b, c1)
	}
	_, err = FindBaseline(ctx, r.dir, "v0.0.9")
	if err == nil || errors.Is(err, ErrNoBaseline) || !strings.Contains(err.Error(), EnvBaseline) {
		t.Errorf("override with a missing tag: got %v, want an error naming %s", err, EnvBaseline)
	}
}

func TestExport(t *testing.T) {
	r := newTestRepo(t)
	c1 := r.commit("one")
	if err := os.MkdirAll(filepath.Join(r.dir, "services", "scheduler", "cmd", "scheduler"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "services", "scheduler", "cmd", "scheduler", "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.git("add", "services")
	r.commit("two")
	r.git("tag", "v0.2.0")

	dir := t.TempDir()
	if err := Export(context.Background(), r.dir, c1, dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "release"))
	if err != nil || string(b) != "one" {
		t.Errorf("exported release file: %q, %v; want %q", b, err, "one")
	}
	tree := Tree{Dir: dir}
	if tree.Has(Commands["scheduler"]) {
		t.Errorf("the first commit has no scheduler, but Has says it does")
	}
	if status := r.git("status", "--porcelain"); status != "" {
		t.Errorf("export changed the work tree:\n%s", status)
	}
	if tags := r.git("tag"); tags != "v0.2.0" {
		t.Errorf("export changed the tags: %q", tags)
	}

	dir = t.TempDir()
	if err := Export(context.Background(), r.dir, "v0.2.0", dir); err != nil {
		t.Fatal(err)
	}
	if !(Tree{Dir: dir}).Has(Commands["scheduler"]) {
		t.Errorf("v0.2.0 has the scheduler, but Has says it does not")
	}
	if err := Export(context.Background(), r.dir, "v9.9.9", t.TempDir()); err == nil {
		t.Errorf("exporting a missing revision: no error")
	}
}

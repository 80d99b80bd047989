// TestInstallLikeAUser publishes the root module and redisadapter to a module
// proxy made of files in a temporary directory, then installs redisadapter
// from it into a fresh module, with no go.work and no replace, as a user does.
//
// The rule for maintainers: redisadapter/go.mod requires
// github.com/rallyhq/rally at the pseudo-version of a commit on main (one
// that is in HEAD's history), never through a replace (a replace in a
// dependency's go.mod is ignored for users). That commit must carry
// everything redisadapter and its tests use from the root. When redisadapter
// comes to need something new from the root, the root's change lands first;
// then a later commit moves the require to a commit that has it, say
// $C, and adds its sums to redisadapter/go.sum. The pseudo-version is
// v0.0.0-<committer time of $C in UTC>-<first 12 hex of $C>:
//
//	git log -1 --date=format-local:%Y%m%d%H%M%S --format=v0.0.0-%cd-%h --abbrev=12 $C
//
// with TZ=UTC (vX.Y.(Z+1)-0.<time>-<hash> once a tag vX.Y.Z is in its
// history). When this test fails, it names the pseudo-version of HEAD and
// prints the go.sum lines it expects. The root is published from the
// required commit itself (git archive), so the test fails if the require
// names a commit that is not in the history, or a root that redisadapter
// does not build and vet against. Rebasing or squashing changes commits: a
// require of a commit that is not on main yet must be moved to its new hash.
// Nothing else needs a bump: local development and CI build every module
// against the working tree through go.work.
//
// redisadapter itself is published from the working tree (the files git
// tracks or would track, as a commit would carry them) under HEAD's
// pseudo-version.
// TestInstallLikeAUser publishes the root module and redisadapter to a module
// proxy made of files in a temporary directory, then installs redisadapter
// from it into a fresh module, with no go.work and no replace, as a user does;
// then the same for metrics, which follows the same rule as redisadapter
// below (each dependent is a subtest, and the root is published at the
// version each requires).
// The root is published from the commit that redisadapter/go.mod requires
// (git archive of it); redisadapter from the work tree (the files git tracks
// or would track: what a commit of it carries) under HEAD's pseudo-version.
// Run it with -count=1, as test.sh does: the test cache does not watch the
// history nor the list of files.
//
// The rule for maintainers: redisadapter/go.mod requires
// github.com/rallyhq/rally at the pseudo-version of a commit in main's
// history, never through a replace (a replace in a dependency's go.mod is
// ignored for users). That commit must carry everything redisadapter and its
// tests use from the root: this test fails when it does not, and when the
// version names no commit of the history. Nothing else needs a bump, since
// development and CI build every module against the work tree through
// go.work. When redisadapter comes to need something new from the root,
// commit the root's change first, then move the require to that commit $C
// in a later commit:
//
//	V=$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=v0.0.0-%cd-%h --abbrev=12 $C)
//	(cd redisadapter && GOWORK=off go mod edit -require=github.com/rallyhq/rally@$V)
//	go test ./internal/modtest # prints, failing, the go.sum lines to add
//
// (once a tag vX.Y.Z is in $C's history the version is
// vX.Y.(Z+1)-0.<time>-<hash>; the test names the right one). Rebasing or
// squashing $C before it lands changes its hash, and the require must follow:
// naming a commit already on main avoids that.
package modtest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

const (
	rootPath    = "github.com/rallyhq/rally"
	redisPath   = "github.com/rallyhq/rally/redisadapter"
	metricsPath = "github.com/rallyhq/rally/metrics"
)

// userModules are the directories, from the repository's root, of the
// modules users import. The examples and bench are main modules, never
// dependencies, so their replaces apply where they are meant to.
var userModules = []string{".", "redisadapter", "metrics"}

// dependent is a module that users import besides the root and that
// requires the root: its directory, its path and the program of a user's
// module that imports it (its README's usage).
type dependent struct {
	dir, path, main string
}

var dependents = []dependent{
	{"redisadapter", redisPath, redisMain},
	{"metrics", metricsPath, metricsMain},
}

// redisMain is the program of the user's module that imports redisadapter.
const redisMain = `package main

import (
	"log"
	"net/http"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/redis/go-redis/v9"
)

func main() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	node := redisadapter.New(client, nil)
	hub := rally.NewHub(&rally.Options{Adapter: node.Adapter})
	hub.On("message", func(s *rally.Socket, text string) { s.Broadcast().Emit("message", text) })
	http.Handle("/socket.io/", hub)
	log.Fatal(http.ListenAndServe(":3000", nil))
}
`

// metricsMain is the program of the user's module that imports metrics.
const metricsMain = `package main

import (
	"log"
	"net/http"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/metrics"
)

func main() {
	hub := rally.NewHub(nil)
	http.Handle("/socket.io/", hub)
	http.Handle("GET /metrics", metrics.New(hub, nil).Handler())
	log.Fatal(http.ListenAndServe(":3000", nil))
}
`

func TestInstallLikeAUser(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot install the modules as a user would")
	}
	if _, err := exec.LookPath("git"); err != nil {
		missing(t, "git is not on PATH: the root is published from the repository's history")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := git(repo, "rev-parse", "--verify", "HEAD^{commit}"); err != nil {
		missing(t, fmt.Sprintf("%s is not a git work tree with a commit (%v): the root is published from its history", repo, err))
	}

	for _, dir := range userModules {
		mf := parseGoMod(t, filepath.Join(repo, dir, "go.mod"))
		for _, r := range mf.Replace {
			t.Errorf("%s/go.mod: replace %s => %s: users import this module, and a replace in a dependency's go.mod is ignored for them; require a version a proxy can serve instead", dir, r.Old, r.New)
		}
	}

	headHash, headTime := commitOf(t, repo, "HEAD")
	headVersion, err := pseudoVersion(repo, headHash, headTime)
	if err != nil {
		t.Fatal(err)
	}
	proxy := filepath.Join(t.TempDir(), "proxy")
	env := userEnv(t, proxy)
	rootPublished := map[string]bool{} // the root's versions in the proxy
	for _, d := range dependents {
		t.Run(d.dir, func(t *testing.T) {
			installDependent(t, repo, proxy, env, d, headVersion, headTime, rootPublished)
		})
	}
}

// installDependent publishes the root at the version that d requires
// (unless rootPublished has it) and d from the work tree at headVersion,
// installs d into a fresh module as a user does, and checks that d builds,
// vets and is tidy with GOWORK=off against the root from the proxy.
func installDependent(t *testing.T, repo, proxy string, env []string, d dependent, headVersion string, headTime time.Time, rootPublished map[string]bool) {
	mod := parseGoMod(t, filepath.Join(repo, d.dir, "go.mod"))
	required := ""
	for _, r := range mod.Require {
		if r.Mod.Path == rootPath {
			required = r.Mod.Version
		}
	}
	if required == "" {
		t.Fatalf("%s/go.mod does not require %s", d.dir, rootPath)
	}

	if rootPublished[required] {
		// published for a dependent before
	} else if hash, when, err := resolveVersion(repo, required); err != nil {
		t.Errorf("%s/go.mod requires %s %s, which no proxy could serve: %v\n"+
			"(the pseudo-version of HEAD is %s; see the rule at the top of this file)",
			d.dir, rootPath, required, err, headVersion)
	} else {
		gomod, err := git(repo, "show", hash+":go.mod")
		if err != nil {
			t.Fatal(err)
		}
		files, err := filesAtCommit(repo, hash)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, proxy, module.Version{Path: rootPath, Version: required}, when, []byte(gomod), files)
		rootPublished[required] = true
	}

	files, err := filesInWorkTree(repo, d.dir)
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repo, d.dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, proxy, module.Version{Path: d.path, Version: headVersion}, headTime, gomod, files)

	// The user's side: a fresh module, go get, go build; once with the
	// version, once with none (the command of the module's README).
	for _, query := range []string{"@" + headVersion, ""} {
		if !installAndBuild(t, env, d.main, d.path+query, map[string]string{rootPath: required, d.path: headVersion}) {
			return
		}
	}

	// The module itself with GOWORK=off: the root comes from the proxy at
	// the required version, as for a user; the module must build, vet
	// (which type-checks its tests) and be tidy against it.
	if !rootPublished[required] {
		return
	}
	modEnv := append(env[:len(env):len(env)], "GOFLAGS=-mod=readonly -modcacherw -trimpath")
	dir := filepath.Join(repo, d.dir)
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}, {"mod", "tidy", "-diff"}} {
		if _, err := goCmd(t, dir, modEnv, args...); err != nil {
			t.Errorf("in %s with GOWORK=off and %s %s from the proxy, go %s fails: %v",
				d.dir, rootPath, required, strings.Join(args, " "), err)
		}
	}
}

// installAndBuild makes a fresh module whose program is main, runs go get
// arg and go build ./... in it, and checks that the program was built with
// the modules at the versions in want, none replaced. It reports whether go
// get and go build succeeded.
func installAndBuild(t *testing.T, env []string, main, arg string, want map[string]string) bool {
	t.Helper()
	consumer := filepath.Join(t.TempDir(), "consumer")
	if err := os.Mkdir(consumer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(consumer, "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGo(t, consumer, env, "mod", "init", "example.com/consumer")
	if _, err := goCmd(t, consumer, env, "get", arg); err != nil {
		t.Errorf("a user's go get %s fails: %v", arg, err)
		return false
	}
	bin := filepath.Join(t.TempDir(), "bin") + string(filepath.Separator)
	if _, err := goCmd(t, consumer, env, "build", "-o", bin, "./..."); err != nil {
		t.Errorf("a user's go build ./... fails after go get %s: %v", arg, err)
		return false
	}
	deps := mustGo(t, consumer, env, "version", "-m", filepath.Join(bin, "consumer"))
	for modPath, version := range want {
		wantDep(t, deps, modPath, version)
	}
	if strings.Contains(deps, "\n\t=>") {
		t.Errorf("the user's build replaced a module:\n%s", deps)
	}
	return true
}

// missing skips the test for a missing tool, or fails it under CI=true,
// where no test may skip.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func parseGoMod(t *testing.T, file string) *modfile.File {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse(file, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mf
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// commitOf returns the full hash and the committer time of rev.
func commitOf(t *testing.T, repo, rev string) (string, time.Time) {
	t.Helper()
	hash, when, err := commitInfo(repo, rev)
	if err != nil {
		t.Fatal(err)
	}
	return hash, when
}

func commitInfo(repo, rev string) (string, time.Time, error) {
	out, err := git(repo, "log", "-1", "--format=%H %ct", rev+"^{commit}", "--")
	if err != nil {
		return "", time.Time{}, err
	}
	hash, secs, ok := strings.Cut(strings.TrimSpace(out), " ")
	n, err := strconv.ParseInt(secs, 10, 64)
	if !ok || err != nil {
		return "", time.Time{}, fmt.Errorf("git log %s: unexpected output %q", rev, out)
	}
	return hash, time.Unix(n, 0).UTC(), nil
}

// latestTag returns the highest semantic version tag v0 or v1 in the history
// of hash, or "" when there is none.
func latestTag(repo, hash string) (string, error) {
	out, err := git(repo, "tag", "--merged", hash, "--list", "v*")
	if err != nil {
		return "", err
	}
	latest := ""
	for _, tag := range strings.Fields(out) {
		if !semver.IsValid(tag) || semver.Build(tag) != "" || (semver.Major(tag) != "v0" && semver.Major(tag) != "v1") {
			continue
		}
		if latest == "" || semver.Compare(tag, latest) > 0 {
			latest = tag
		}
	}
	return latest, nil
}

// pseudoVersion is the version the go command gives the commit hash.
func pseudoVersion(repo, hash string, when time.Time) (string, error) {
	older, err := latestTag(repo, hash)
	if err != nil {
		return "", err
	}
	return module.PseudoVersion("", older, when, hash[:12]), nil
}

// resolveVersion finds the commit that version names in the repository: a
// pseudo-version of a commit in HEAD's history, or a tag there.
func resolveVersion(repo, version string) (string, time.Time, error) {
	var rev string
	switch {
	case module.IsPseudoVersion(version):
		var err error
		if rev, err = module.PseudoVersionRev(version); err != nil {
			return "", time.Time{}, err
		}
	case semver.IsValid(version) && semver.Canonical(version) == version:
		if _, err := git(repo, "rev-parse", "--verify", "--quiet", "refs/tags/"+version); err != nil {
			return "", time.Time{}, fmt.Errorf("%s is not a tag of this repository", version)
		}
		rev = "refs/tags/" + version
	default:
		return "", time.Time{}, fmt.Errorf("%s is neither a pseudo-version nor a tag", version)
	}
	hash, when, err := commitInfo(repo, rev)
	if err != nil {
		shallow, _ := git(repo, "rev-parse", "--is-shallow-repository")
		if strings.TrimSpace(shallow) == "true" {
			return "", time.Time{}, fmt.Errorf("commit %s is not in this shallow clone (fetch the whole history): %v", rev, err)
		}
		return "", time.Time{}, fmt.Errorf("this repository has no commit %s (rebasing or squashing drops the commits a pseudo-version can name): %v", rev, err)
	}
	if _, err := git(repo, "merge-base", "--is-ancestor", hash, "HEAD"); err != nil {
		return "", time.Time{}, fmt.Errorf("commit %s is not in HEAD's history", hash)
	}
	if module.IsPseudoVersion(version) {
		want, err := pseudoVersion(repo, hash, when)
		if err != nil {
			return "", time.Time{}, err
		}
		if version != want {
			return "", time.Time{}, fmt.Errorf("the pseudo-version of commit %s is %s", hash, want)
		}
	}
	return hash, when, nil
}

// archived is a file of a git archive.
type archived struct {
	name string
	f    *zip.File
}

func (a archived) Path() string                 { return a.name }
func (a archived) Lstat() (fs.FileInfo, error)  { return a.f.FileInfo(), nil }
func (a archived) Open() (io.ReadCloser, error) { return a.f.Open() }

// filesAtCommit lists the files of the commit hash, as the go command finds
// them when it makes a module zip from a repository (git archive).
func filesAtCommit(repo, hash string) ([]modzip.File, error) {
	out, err := git(repo, "-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=zip", hash)
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(strings.NewReader(out), int64(len(out)))
	if err != nil {
		return nil, err
	}
	var files []modzip.File
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, "/") {
			files = append(files, archived{f.Name, f})
		}
	}
	return files, nil
}

// onDisk is a file of the work tree.
type onDisk struct {
	name, file string
	info       fs.FileInfo
}

func (d onDisk) Path() string                 { return d.name }
func (d onDisk) Lstat() (fs.FileInfo, error)  { return d.info, nil }
func (d onDisk) Open() (io.ReadCloser, error) { return os.Open(d.file) }

// filesInWorkTree lists the files under dir that git tracks or would track
// (not ignored), as they are in the work tree: what a commit of it carries.
func filesInWorkTree(repo, dir string) ([]modzip.File, error) {
	out, err := git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var files []modzip.File
	for _, name := range strings.Split(out, "\x00") {
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		file := filepath.Join(repo, filepath.FromSlash(name))
		info, err := os.Lstat(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree
		} else if err != nil {
			return nil, err
		}
		files = append(files, onDisk{strings.TrimPrefix(name, dir+"/"), file, info})
	}
	return files, nil
}

// publish writes what the module proxy protocol serves for m under proxy:
// the list of versions, .info, .mod and .zip.
func publish(t *testing.T, proxy string, m module.Version, when time.Time, gomod []byte, files []modzip.File) {
	t.Helper()
	escPath, err := module.EscapePath(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	escVersion, err := module.EscapeVersion(m.Version)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(proxy, filepath.FromSlash(escPath), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := os.OpenFile(filepath.Join(dir, "list"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintln(list, m.Version); err != nil {
		t.Fatal(err)
	}
	if err := list.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.Version, when})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, escVersion+".info"), info, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, escVersion+".mod"), gomod, 0o644); err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	if err := modzip.Create(&zipped, m, files); err != nil {
		t.Fatalf("zip of %s: %v", m, err)
	}
	if err := os.WriteFile(filepath.Join(dir, escVersion+".zip"), zipped.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("published %s (%d bytes zipped)", m, zipped.Len())
}

// userEnv is the environment of a user's go command: no workspace, modules
// from the file proxy first, then from the environment's proxies. A module
// cache of its own keeps what is published here out of the shared one; the
// shared one serves, as a proxy, what it already holds (go-redis and the
// like), so nothing is downloaded twice.
func userEnv(t *testing.T, proxy string) []string {
	t.Helper()
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	proxies := []string{fileURL(proxy)}
	if cache := goEnv("GOMODCACHE"); cache != "" {
		proxies = append(proxies, fileURL(filepath.Join(cache, "cache", "download")))
	}
	if p := goEnv("GOPROXY"); p != "" {
		proxies = append(proxies, p)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GO") {
			env = append(env, kv)
		}
	}
	return append(env,
		"GOWORK=off",
		"GOFLAGS=-mod=mod -modcacherw -trimpath",
		"GOPROXY="+strings.Join(proxies, ","),
		"GONOSUMDB=github.com/rallyhq",
		"GOSUMDB="+goEnv("GOSUMDB"),
		"GOPRIVATE=",
		"GONOPROXY=",
		// The rally modules come from the file proxy or not at all.
		"GOVCS=github.com/rallyhq:off",
		"GOMODCACHE="+filepath.Join(t.TempDir(), "modcache"),
		"GOCACHE="+goEnv("GOCACHE"),
		"GOPATH="+goEnv("GOPATH"),
		"GOTOOLCHAIN=local",
	)
}

func fileURL(dir string) string {
	return "file://" + path.Clean(filepath.ToSlash(dir))
}

func goCmd(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("go %s (in %s, %v): %v\n%s", strings.Join(args, " "), dir, time.Since(start).Round(time.Millisecond), errOrOK(err), out)
	return string(out), err
}

func errOrOK(err error) any {
	if err != nil {
		return err
	}
	return "ok"
}

func mustGo(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := goCmd(t, dir, env, args...)
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// wantDep checks that the build information of a binary (go version -m)
// lists the module at the version, from the proxy.
func wantDep(t *testing.T, buildInfo, modPath, version string) {
	t.Helper()
	for _, line := range strings.Split(buildInfo, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "dep" && f[1] == modPath {
			if f[2] != version {
				t.Errorf("the user's build used %s %s, want %s", modPath, f[2], version)
			}
			if len(f) < 4 || !strings.HasPrefix(f[3], "h1:") {
				t.Errorf("the user's build has no checksum for %s: %q", modPath, line)
			}
			return
		}
	}
	t.Errorf("the user's build does not list %s:\n%s", modPath, buildInfo)
}

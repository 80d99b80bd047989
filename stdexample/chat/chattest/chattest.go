// Package chattest drives the chat page of rally's examples in headless
// Chromium, for the examples' tests: two users join a room in two tabs and
// exchange text and files, and each tab must show what the other sent.
//
// It needs Chromium (apt-get install -y chromium) and the page's npm
// package (npm ci --prefix stdexample/chat/web). When either is missing
// the test is skipped, or fails when the environment variable CI is
// "true".
package chattest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Unavailable skips t because something the test needs is missing, or
// fails it when CI is "true": there, a skipped browser test would hide a
// broken setup.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (required when CI=true)", msg)
	}
	t.Skip(msg)
}

// Chromium returns the path of the browser: $CHROME if set, else the
// first of chromium, chromium-browser, google-chrome found in $PATH.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Unavailable(t, "chromium not found in $PATH (Debian: apt-get install -y chromium; or set $CHROME)")
	return ""
}

// NewBrowser starts headless Chromium with a fresh profile and returns a
// context for chromedp.NewContext; the browser stops when t ends. The
// flags keep the browser off the network: on a machine without internet
// access, background requests to Google's services otherwise stall it.
func NewBrowser(t testing.TB) context.Context {
	t.Helper()
	path := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 760),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
	})
	// The first Run starts the browser; it must not have a deadline.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return browser
}

// Scenario is what TwoUsers does.
type Scenario struct {
	URL   string // base URL of the app, such as httptest.Server.URL
	Token string // the app's member token; Alice uses it, Bob is a guest
	Room  string
}

// page is one browser tab, with the user in it.
type page struct {
	t    testing.TB
	name string
	ctx  context.Context
}

const stepTimeout = 15 * time.Second

// newPage opens a tab of browser at url.
func newPage(t testing.TB, browser context.Context, name, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// The first Run opens the tab, which lives as long as the context of
	// that call: it must not be one of do's contexts with a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	p := &page{t: t, name: name, ctx: ctx}
	p.do("open the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#join-form")))
	return p
}

// do runs steps, failing the test with what was being done.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %s: %v (status line: %q)", p.name, what, err, p.status())
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](p *page, what, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: %s: %v (status line: %q)", p.name, what, err, p.status())
	}
	return v
}

// waitFor polls a JavaScript condition until it holds.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	p.do("wait until "+what, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout)))
}

// status returns the page's status line, for failure messages.
func (p *page) status() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
	return s
}

func (p *page) join(nickname, room string) {
	p.t.Helper()
	p.do("join "+room,
		chromedp.SetValue(chromedp.CSS("#nickname"), nickname),
		chromedp.SetValue(chromedp.CSS("#room"), room),
		chromedp.Click(chromedp.CSS("#join")),
		chromedp.WaitVisible(chromedp.CSS("#chat")),
	)
}

func (p *page) users() []string {
	p.t.Helper()
	return eval[[]string](p, "read the user list", `[...document.querySelectorAll('#users li')].map(li => li.textContent)`)
}

func (p *page) waitUsers(names ...string) {
	p.t.Helper()
	want := fmt.Sprintf("%q", strings.Join(names, "\n"))
	p.waitFor("the user list is "+strings.Join(names, ", "),
		`[...document.querySelectorAll('#users li')].map(li => li.textContent).join('\n') === `+want)
}

func (p *page) sendText(text string) {
	p.t.Helper()
	p.do("send "+text,
		chromedp.SetValue(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send")),
	)
}

func (p *page) sendFile(path string) {
	p.t.Helper()
	p.do("send "+filepath.Base(path),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path}),
		chromedp.Click(chromedp.CSS("#send-file")),
	)
}

// textFrom waits for a text message from a nickname.
func (p *page) textFrom(from, text string) {
	p.t.Helper()
	sel := fmt.Sprintf(`li.msg.text[data-from=%q]`, from)
	p.waitFor(fmt.Sprintf("a message %q from %s shows", text, from), fmt.Sprintf(
		`[...document.querySelectorAll(%q)].some(li => li.querySelector('.body').textContent === %q)`, sel, text))
}

// fileFrom waits for a file from a nickname, then returns the byte count
// the page shows and the bytes it holds (read back from its blob URL).
func (p *page) fileFrom(from, name string) (shown string, data []byte) {
	p.t.Helper()
	sel := fmt.Sprintf(`#messages li.msg.file[data-from=%q][data-name=%q]`, from, name)
	p.waitFor(fmt.Sprintf("the file %s from %s shows", name, from), fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
	shown = eval[string](p, "read the file's size", fmt.Sprintf(`document.querySelector(%q).dataset.size`, sel))
	b64 := eval[string](p, "read the file's bytes", fmt.Sprintf(`(async () => {
		const res = await fetch(document.querySelector(%q).querySelector('a').href);
		const bytes = new Uint8Array(await res.arrayBuffer());
		let s = '';
		for (const b of bytes) s += String.fromCharCode(b);
		return btoa(s);
	})()`, sel))
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		p.t.Fatalf("%s: decoding the file's bytes: %v", p.name, err)
	}
	return shown, data
}

// imageSize waits for the image of a file to be decoded and returns its
// size in pixels.
func (p *page) imageSize(from, name string) (w, h int) {
	p.t.Helper()
	img := fmt.Sprintf(`document.querySelector(%q)`, fmt.Sprintf(`#messages li.msg.file[data-from=%q][data-name=%q] img`, from, name))
	p.waitFor("the image "+name+" is decoded", img+` !== null && `+img+`.complete && `+img+`.naturalWidth > 0`)
	size := eval[[]int](p, "read the image size", `[`+img+`.naturalWidth, `+img+`.naturalHeight]`)
	return size[0], size[1]
}

func (p *page) screenshot(dir string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	p.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	path := filepath.Join(dir, "chat-"+strings.ToLower(p.name)+".png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// TwoUsers runs the chat scenario in two tabs of browser: Alice, a member
// (with the token), and Bob, a guest, join the same room; each sends a
// text message and a file (Alice an image, Bob bytes 0 to 255); each page
// must show what the other sent — the text, the exact bytes, the image
// decoded — and the user lists must hold both. It saves a screenshot of
// each page in dir and returns their paths.
func TwoUsers(t testing.TB, browser context.Context, sc Scenario, dir string) []string {
	t.Helper()
	alice := newPage(t, browser, "Alice", sc.URL+"/?token="+sc.Token)
	bob := newPage(t, browser, "Bob", sc.URL+"/?transports=polling")

	alice.join("alice", sc.Room)
	alice.waitUsers("alice")
	bob.join("bob", sc.Room)
	bob.waitUsers("alice", "bob")
	alice.waitUsers("alice", "bob") // from the "users" event
	// Alice's client upgrades to websocket; Bob's stays on long-polling,
	// so binary data goes over both transports.
	alice.waitFor("the connection upgrades to websocket", `state.socket.io.engine.transport.name === 'websocket'`)
	if tr := eval[string](bob, "read the transport", `state.socket.io.engine.transport.name`); tr != "polling" {
		t.Errorf("Bob's transport is %s, want polling", tr)
	}
	if got := eval[[]bool](alice, "read member marks", `[...document.querySelectorAll('#users li')].map(li => li.classList.contains('member'))`); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("Alice's page marks members %v, want [true false] (alice has the token, bob is a guest)", got)
	}

	alice.sendText("Hello Bob, this is Alice")
	bob.textFrom("alice", "Hello Bob, this is Alice")
	alice.textFrom("alice", "Hello Bob, this is Alice") // her own, from the ack
	bob.sendText("Hi Alice! Bob here")
	alice.textFrom("bob", "Hi Alice! Bob here")

	imgPath, imgData := writeImage(t, dir, 96, 64)
	alice.sendFile(imgPath)
	shown, got := bob.fileFrom("alice", filepath.Base(imgPath))
	if shown != fmt.Sprint(len(imgData)) || !bytes.Equal(got, imgData) {
		t.Errorf("Bob's page got the image as %s bytes (%d held), want the %d bytes Alice sent", shown, len(got), len(imgData))
	}
	if w, h := bob.imageSize("alice", filepath.Base(imgPath)); w != 96 || h != 64 {
		t.Errorf("Bob's page shows a %dx%d image, want 96x64", w, h)
	}

	binPath := filepath.Join(dir, "bytes.bin")
	binData := make([]byte, 256)
	for i := range binData {
		binData[i] = byte(i)
	}
	if err := os.WriteFile(binPath, binData, 0o644); err != nil {
		t.Fatal(err)
	}
	bob.sendFile(binPath)
	shown, got = alice.fileFrom("bob", "bytes.bin")
	if shown != "256" || !bytes.Equal(got, binData) {
		t.Errorf("Alice's page got bytes.bin as %s bytes (%d held, starting % .8x), want the 256 bytes 00 to ff", shown, len(got), got)
	}
	// Each sender's page lists its own file too, from the ack.
	alice.fileFrom("alice", filepath.Base(imgPath))
	bob.fileFrom("bob", "bytes.bin")

	if got := bob.users(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("Bob's user list is %q, want alice and bob", got)
	}
	return []string{alice.screenshot(dir), bob.screenshot(dir)}
}

// writeImage writes a w×h PNG with a pattern to dir and returns its path
// and bytes.
func writeImage(t testing.TB, dir string, w, h int) (string, []byte) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(x * 255 / w), G: uint8(y * 255 / h), B: uint8((x / 8 % 2) * 200), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pattern.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, buf.Bytes()
}

// DocSnippet runs, in a new tab of browser opened on the app at url, the
// client of the Socket.IO documentation that stdexample's doc quotes —
// send 'Hello!', emit 'salutations' with a Uint8Array, log 'message' and
// 'greetings' — with console.log replaced by a recorder. It returns what
// was logged, binary values as arrays of numbers, as JSON.
func DocSnippet(t testing.TB, browser context.Context, url string) string {
	t.Helper()
	p := newPage(t, browser, "Snippet", url+"/")
	return eval[string](p, "run the documentation's client", `new Promise((resolve, reject) => {
		const logged = [];
		const console = { log: (...args) => {
			logged.push(args.map(a => a instanceof ArrayBuffer ? Array.from(new Uint8Array(a)) : a));
			if (logged.length === 2) { socket.close(); resolve(JSON.stringify(logged)); }
		} };
		setTimeout(() => reject(new Error('timed out; logged: ' + JSON.stringify(logged))), 10000);

		const socket = io('ws://' + location.host);
		socket.on('connect', () => {
		  socket.send('Hello!');
		  socket.emit('salutations', 'Hello!', { 'mr': 'john' }, Uint8Array.from([1, 2, 3, 4]));
		});
		socket.on('message', data => console.log(data));
		socket.on('greetings', (a, b, c) => console.log(a, b, c));
	})`)
}

// MissingClient opens the page of an app that has no client bundle, waits
// for the page to report it, and returns the status line.
func MissingClient(t testing.TB, browser context.Context, url string) string {
	t.Helper()
	p := newPage(t, browser, "Page", url+"/")
	p.waitFor("the page reports the missing client", `document.getElementById('status').classList.contains('error')`)
	if eval[bool](p, "read the join button", `document.getElementById('join').disabled`) != true {
		t.Errorf("the Join button is enabled without a client")
	}
	return p.status()
}

// JoinRefused opens the page at url (its query may carry a token), tries
// to join a room, waits for the page to report an error, and returns the
// status line.
func JoinRefused(t testing.TB, browser context.Context, url string) string {
	t.Helper()
	p := newPage(t, browser, "Refused", url)
	p.do("click Join",
		chromedp.SetValue(chromedp.CSS("#nickname"), "mallory"),
		chromedp.Click(chromedp.CSS("#join")),
	)
	p.waitFor("the page reports an error", `document.getElementById('status').classList.contains('error')`)
	if eval[bool](p, "read the chat's visibility", `document.getElementById('chat').hidden`) != true {
		t.Errorf("the chat shows after a refusal")
	}
	return p.status()
}

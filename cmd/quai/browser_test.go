package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/quai-ci/quai/internal/testenv"
)

// The browser tests drive the web UI of the real daemon in a headless
// Chromium over the DevTools protocol, as a person would: they type into
// forms, press buttons, accept confirmation dialogs and read what the page
// shows.

// logSelector finds the element of the run page that shows the log.
const logSelector = "#log"

// browserTimeout bounds one browser action: a navigation, a click, a wait
// for an element.
const browserTimeout = 20 * time.Second

// runTimeout bounds a wait for a run to print a line or to end. Docker
// may be slow to start a step's container while other tests use it.
const runTimeout = 2 * time.Minute

// xssMessage is a commit message that runs script if a page inserts it
// as HTML.
const xssMessage = "<script>alert(1)</script>"

// xssAuthor is an author name that runs script if a page inserts it as
// HTML.
const xssAuthor = "<img src=x onerror=alert(2)>"

func TestBrowserLogin(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	b := startBrowser(t, d.url)

	b.open("/")
	if got := b.path(); got != "/login" {
		t.Fatalf("an anonymous visit to / ended on %s, want /login", got)
	}

	b.login("admin", "wrong-"+randomHex(t, 8))
	alert := value(b, "reading the login error", chromedp.Text(chromedp.CSS(`[role=alert]`)))
	if !strings.Contains(alert, "Wrong user name or password") {
		t.Errorf("login error is %q, want it to say the user name or password is wrong", alert)
	}
	if got := b.path(); got != "/login" {
		t.Errorf("a wrong password ended on %s, want /login", got)
	}

	b.login("admin", adminPassword(t, d))
	if got := b.path(); got != "/" {
		t.Fatalf("the right password ended on %s, want the dashboard at /", got)
	}
	b.waitDashboard()
}

func TestBrowserDeployFlow(t *testing.T) {
	base := testenv.BusyboxImage(t)
	requireCommand(t, "git")
	requireCommand(t, "docker")
	suffix := randomHex(t, 4)
	w := webPipeline{
		Base:      base,
		Image:     "quai-test/browser-" + suffix,
		Container: "quai-test-browser-" + suffix,
		Port:      freePort(t),
	}
	repo := newApp(t, "version 1")
	w.CloneURL = repo.dir
	t.Cleanup(func() { removeApp(t, w.Container, w.Image) })
	d := startDaemon(t, writePipeline(t, w), nil)
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", w.Port)

	b := startBrowser(t, d.url)
	b.open("/login")
	b.login("admin", adminPassword(t, d))
	b.waitDashboard()

	// A push appears on the dashboard, and its run page shows log lines
	// while the step still prints them.
	c1 := repo.commit(t, "version 1")
	run1 := pushMessage(t, d, "acme/web", c1, repo.dir, "version 1", "e2e")
	b.open("/")
	runLink := fmt.Sprintf(`a[href="/runs/%d"]`, run1)
	b.do("finding the run on the dashboard", chromedp.WaitVisible(chromedp.CSS(runLink)))
	b.click("opening the run page", runLink)
	b.followLog(d, run1)
	d.waitRun(t, run1, "success")
	if body := get(t, appURL); !strings.Contains(body, "version 1") {
		t.Fatalf("app returned %q after the first deploy, want version 1", body)
	}

	// A commit message and author made of HTML show as text.
	repo.write(t, "www/index.html", "<p>hello from quai, version 2</p>\n")
	c2 := repo.commit(t, xssMessage)
	run2 := pushMessage(t, d, "acme/web", c2, repo.dir, xssMessage, xssAuthor)
	d.waitRun(t, run2, "success")
	seen := len(b.dialogsSeen())
	b.open("/")
	b.checkShownAsText("the dashboard", seen)
	b.screenshot("dashboard")
	seen = len(b.dialogsSeen())
	b.open(fmt.Sprintf("/runs/%d", run2))
	b.checkShownAsText("the run page", seen)
	b.screenshot("run")

	// Redeploy from the pipeline page: after a confirmation the run page
	// of the redeploy opens, and its deployment heads the history.
	b.open("/pipelines/web")
	b.click("pressing Redeploy", `form[action="/pipelines/web/redeploy"] button[type=submit]`)
	b.checkConfirmed("Redeploy the image in service for web")
	redeploy := b.runOnPage()
	b.checkPageShows("the redeploy's run page", "redeploy", "by admin")
	d.waitRun(t, redeploy, "success")
	b.open("/pipelines/web")
	rows := b.deploymentRows()
	if len(rows) != 3 {
		t.Fatalf("deployment history after the redeploy lists %d rows, want 3:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	for _, want := range []string{"current", "redeploy", fmt.Sprintf("run #%d", redeploy)} {
		if !strings.Contains(rows[0], want) {
			t.Errorf("newest deployment row is %q, want it to contain %q", rows[0], want)
		}
	}
	if body := get(t, appURL); !strings.Contains(body, "version 2") {
		t.Fatalf("app returned %q after the redeploy, want version 2", body)
	}

	// Roll back to the first deployment: version 1 serves again.
	var deps []struct {
		ID    uint64 `json:"id"`
		RunID uint64 `json:"run_id"`
	}
	d.getJSON(t, "/api/pipelines/web/deployments", &deps)
	var first uint64
	for _, dep := range deps {
		if dep.RunID == run1 {
			first = dep.ID
		}
	}
	if first == 0 {
		t.Fatalf("deployments %+v lack the one of run %d", deps, run1)
	}
	b.click("pressing Roll back", fmt.Sprintf(
		`form[action="/pipelines/web/rollback"]:has(input[name=deployment][value="%d"]) button[type=submit]`, first))
	b.checkConfirmed(fmt.Sprintf("Roll web back to deployment #%d", first))
	rollback := b.runOnPage()
	b.checkPageShows("the rollback's run page", "rollback", "by admin")
	d.waitRun(t, rollback, "success")
	if body := get(t, appURL); !strings.Contains(body, "version 1") {
		t.Fatalf("app returned %q after the rollback, want version 1", body)
	}
	b.open("/pipelines/web")
	rows = b.deploymentRows()
	if len(rows) != 4 {
		t.Fatalf("deployment history after the rollback lists %d rows, want 4:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	for _, want := range []string{"current", "rollback", fmt.Sprintf("run #%d", rollback), c1[:12]} {
		if !strings.Contains(rows[0], want) {
			t.Errorf("newest deployment row is %q, want it to contain %q", rows[0], want)
		}
	}
	b.screenshot("pipeline")
}

// browser is one tab of a headless Chromium that the test started.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu      sync.Mutex
	dialogs []page.EventJavascriptDialogOpening
}

// startBrowser starts Chromium with a fresh profile and opens one tab for
// the daemon at base. Every JavaScript dialog the pages open is accepted
// and recorded. Chromium stops when the test ends.
func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Skip(t, "chromium", "not on PATH (Debian package chromium)")
	}

	// The flags keep Chromium from reaching any host but the daemon: no
	// background updates, sync, QUIC probes or first-run pages, and every
	// host name fails to resolve, so only IP literals such as the
	// daemon's 127.0.0.1 can be reached.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)

	// The first action starts the browser and binds its life to ctx, so it
	// runs without a deadline. The timer bounds a start that hangs.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", path, err)
		}
	case <-time.After(browserTimeout):
		t.Fatalf("%s did not start within %s", path, browserTimeout)
	}

	b := &browser{t: t, ctx: ctx, base: base}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	var wg sync.WaitGroup
	wg.Go(func() { b.acceptDialogs(dialogs) })
	t.Cleanup(func() {
		cancelTab()
		wg.Wait()
	})
	return b
}

// acceptDialogs accepts every dialog until the tab closes. A confirm
// dialog blocks the page, and with it the click that opened it, so only
// a second goroutine can accept it.
func (b *browser) acceptDialogs(events iter.Seq2[page.EventJavascriptDialogOpening, error]) {
	for ev, err := range events {
		if err != nil {
			return
		}
		b.mu.Lock()
		b.dialogs = append(b.dialogs, ev)
		b.mu.Unlock()
		_, err := chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		if err != nil && b.ctx.Err() == nil {
			b.t.Errorf("accepting the %s dialog %q: %v", ev.Type, ev.Message, err)
		}
	}
}

// dialogsSeen returns the dialogs the pages opened so far.
func (b *browser) dialogsSeen() []page.EventJavascriptDialogOpening {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]page.EventJavascriptDialogOpening(nil), b.dialogs...)
}

// do runs actions with one deadline and fails the test with what on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// fail ends the test after a failed browser action, with the page's URL
// and a screenshot of it to show what the page looked like.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	shot := "none"
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
		shot = filepath.Join(screenshotDir(b.t), "failure.png")
		if werr := os.WriteFile(shot, png, 0o644); werr != nil {
			shot = werr.Error()
		}
	}
	b.t.Fatalf("%s: %v (page %s, screenshot %s)", what, err, b.location(), shot)
}

// location returns the URL of the tab, for failure messages.
func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return fmt.Sprintf("unknown: %v", err)
	}
	return loc
}

// value runs one action that returns a value, with one deadline.
func value[T any](b *browser, what string, action chromedp.Action[T]) T {
	b.t.Helper()
	return valueWithin(b, browserTimeout, what, action)
}

// valueWithin is value with a deadline of timeout.
func valueWithin[T any](b *browser, timeout time.Duration, what string, action chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// waitJS polls a JavaScript expression in the page until it is true, for
// at most timeout.
func (b *browser) waitJS(timeout time.Duration, what, expression string) {
	b.t.Helper()
	valueWithin(b, timeout+time.Second, "waiting for "+what, chromedp.Poll[bool](expression,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(timeout)))
}

// path returns the path of the page the tab shows.
func (b *browser) path() string {
	b.t.Helper()
	return value(b, "reading location.pathname", chromedp.Evaluate[string]("location.pathname"))
}

// click clicks the first element that matches the CSS selector and waits
// for the page it leads to.
func (b *browser) click(what, selector string) {
	b.t.Helper()
	value(b, what, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(selector))))
}

// login fills in and sends the login form, which must be on the page.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.do("filling in the login form",
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.Clear(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.Clear(chromedp.CSS(`input[name=password]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
	)
	b.click("sending the login form", `form[action="/login"] button[type=submit]`)
}

// waitDashboard waits until the tab shows the dashboard.
func (b *browser) waitDashboard() {
	b.t.Helper()
	b.waitJS(browserTimeout, "the dashboard", `location.pathname === "/" && document.querySelector("h1")?.textContent === "Pipelines"`)
}

// followLog checks, on the run page of a running run, that log lines
// arrive without a reload while the run is still running.
func (b *browser) followLog(d *daemon, run uint64) {
	t := b.t
	t.Helper()
	// A reload would drop this variable, so finding it set later proves
	// the lines came in over the open page.
	initial := value(b, "reading the log as first shown", chromedp.Evaluate[string](
		"window.quaiTestPage = true; document.querySelector("+jsString(logSelector)+").textContent"))
	next := ""
	for i := 1; i <= 5; i++ {
		if line := fmt.Sprintf("line %d", i); !strings.Contains(initial, line) {
			next = line
			break
		}
	}
	if next == "" {
		t.Fatalf("the run page showed every step line at load, so no line was left to arrive live:\n%s", initial)
	}
	b.waitJS(runTimeout, next+" to arrive", "window.quaiTestPage === true && document.querySelector("+
		jsString(logSelector)+").textContent.includes("+jsString(next)+")")
	var r apiRun
	d.getJSON(t, fmt.Sprintf("/api/runs/%d", run), &r)
	if r.Status != "running" {
		t.Errorf("run %d was %s when %q arrived in the page, want running", run, r.Status, next)
	}
	b.screenshot("run-live")

	// The same page shows the end of the log and the final status.
	b.waitJS(runTimeout, "the end of the log", "window.quaiTestPage === true && document.querySelector("+
		jsString(logSelector)+").textContent.includes(\"run succeeded\")")
	b.waitJS(browserTimeout, "the final status", `window.quaiTestPage === true &&
		document.getElementById("status").textContent === "success" &&
		document.getElementById("follow").textContent === "run finished"`)
}

// checkShownAsText checks that xssMessage and xssAuthor appear as text on
// the page, and that no alert opened after the first seen dialogs.
func (b *browser) checkShownAsText(where string, seen int) {
	b.t.Helper()
	for _, text := range []string{xssMessage, xssAuthor} {
		shown := value(b, "reading the text of "+where, chromedp.Evaluate[bool](
			"document.body.innerText.includes("+jsString(text)+")"))
		if !shown {
			b.t.Errorf("%s does not show %q as text", where, text)
		}
	}
	scripts := value(b, "counting scripts on "+where, chromedp.Evaluate[int](
		`[...document.querySelectorAll("script")].filter(s => s.textContent.includes("alert(")).length`))
	if scripts != 0 {
		b.t.Errorf("%s has %d script elements from the commit message", where, scripts)
	}
	images := value(b, "counting images on "+where, chromedp.Evaluate[int](
		`document.querySelectorAll("img[onerror]").length`))
	if images != 0 {
		b.t.Errorf("%s has %d img elements from the author name", where, images)
	}
	for _, ev := range b.dialogsSeen()[seen:] {
		if ev.Type == page.DialogTypeAlert {
			b.t.Errorf("%s opened an alert %q", where, ev.Message)
		}
	}
}

// checkConfirmed checks that a confirm dialog whose message starts with
// prefix was opened and accepted.
func (b *browser) checkConfirmed(prefix string) {
	b.t.Helper()
	for _, ev := range b.dialogsSeen() {
		if ev.Type == page.DialogTypeConfirm && strings.HasPrefix(ev.Message, prefix) {
			return
		}
	}
	b.t.Errorf("no confirm dialog starting with %q opened; dialogs: %+v", prefix, b.dialogsSeen())
}

// runOnPage returns the id of the run whose page the tab shows.
func (b *browser) runOnPage() uint64 {
	b.t.Helper()
	path := b.path()
	var id uint64
	if _, err := fmt.Sscanf(path, "/runs/%d", &id); err != nil || path != fmt.Sprintf("/runs/%d", id) {
		b.t.Fatalf("the tab shows %s, want a run page /runs/ID", path)
	}
	return id
}

// checkPageShows checks that the text of the page contains every one of
// texts.
func (b *browser) checkPageShows(where string, texts ...string) {
	b.t.Helper()
	body := value(b, "reading the text of "+where, chromedp.Evaluate[string]("document.body.innerText"))
	for _, text := range texts {
		if !strings.Contains(body, text) {
			b.t.Errorf("%s does not show %q:\n%s", where, text, body)
		}
	}
}

// deploymentRows returns the text of each row of the deployment history
// on the pipeline page, newest first.
func (b *browser) deploymentRows() []string {
	b.t.Helper()
	// The history is the table with a Rollback column.
	return value(b, "reading the deployment history", chromedp.Evaluate[[]string](`
		[...document.querySelectorAll("table")]
			.filter(t => t.tHead && t.tHead.innerText.includes("Rollback"))
			.flatMap(t => [...t.tBodies[0].rows].map(r => r.innerText))`))
}

// open navigates to a path of the daemon.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("opening "+path, chromedp.Navigate(b.base+path))
}

// screenshot saves a PNG of the whole page into $QUAI_SCREENSHOTS, or a
// temporary folder, and logs its path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png := value(b, "taking screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(screenshotDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("writing screenshot: %v", err)
	}
	b.t.Logf("screenshot of %s: %s", b.location(), path)
	return path
}

// screenshotDir returns $QUAI_SCREENSHOTS, created if missing, or else a
// temporary folder.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("QUAI_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating the screenshot folder: %v", err)
	}
	return dir
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(q)
}

// pushMessage is daemon.push with the commit message and author of the
// head commit set, so a test controls the text the pages show.
func pushMessage(t *testing.T, d *daemon, repo, commit, cloneURL, message, author string) uint64 {
	t.Helper()
	return d.pushWith(t, repo, "refs/heads/main", commit, cloneURL, func(hc map[string]any) {
		hc["message"] = message
		hc["author"].(map[string]any)["name"] = author
	})
}

// webPipeline is what testdata/browser/web.yml needs filled in.
type webPipeline struct {
	CloneURL  string
	Base      string
	Image     string
	Container string
	Port      int
}

// writePipeline renders testdata/browser/web.yml into a new pipelines
// folder and returns the folder.
func writePipeline(t *testing.T, w webPipeline) string {
	t.Helper()
	tmpl, err := template.ParseFiles("testdata/browser/web.yml")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, w); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.yml"), buf.String())
	return dir
}

// adminPassword reads the password the daemon wrote for the first user.
func adminPassword(t *testing.T, d *daemon) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.data, "initial-admin-password"))
	if err != nil {
		t.Fatalf("reading the initial admin password: %v", err)
	}
	return strings.TrimSpace(string(b))
}

package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// positioned formats problems without their file name, as "line:column:
// message", so tables stay short.
func positioned(problems []Problem) []string {
	var out []string
	for _, p := range problems {
		out = append(out, strings.TrimPrefix(p.String(), p.File+":"))
	}
	return out
}

func readTestdata(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseInvalid(t *testing.T) {
	const containerRule = `use 2 to 63 letters, digits, "_", "." or "-", starting with a letter or digit`
	const envRule = `use letters, digits and "_", not starting with a digit`
	const cronRule = `expected five fields (minute hour day-of-month month day-of-week) such as ` +
		`"30 2 * * *", or @hourly, @daily, @weekly, @monthly, @yearly or "@every 6h"`
	const deployKeys = "container, port, publish, network, health, env, vault, secrets, restart, " +
		"stop_timeout, haproxy, keep_images"
	tests := []struct {
		file string
		want []string
	}{
		// YAML syntax: yaml.v3 reports lines but no columns.
		{"syntax-indent.yml", []string{"4: invalid YAML: did not find expected key"}},
		// yaml.v3's own messages say "line 2" and "line 3" here, the 0-based
		// line where the enclosing mapping starts. Parse searches for the
		// line that breaks it.
		{"syntax-nested-indent.yml", []string{"6: invalid YAML: did not find expected key"}},
		{"syntax-sequence.yml", []string{"8: invalid YAML: did not find expected key"}},
		{"syntax-tab.yml", []string{"3: invalid YAML: found character that cannot start any token " +
			"(YAML indentation must use spaces, not tabs)"}},
		{"syntax-colon.yml", []string{"2: invalid YAML: mapping values are not allowed in this context"}},
		{"syntax-flow.yml", []string{"3: invalid YAML: did not find expected ',' or ']'"}},
		{"syntax-anchor.yml", []string{"2: invalid YAML: unknown anchor 'nope' referenced"}},

		// Whole-file shape.
		{"empty.yml", []string{"1:1: file is empty, expected a pipeline with at least repo"}},
		{"comment-only.yml", []string{"1:1: file is empty, expected a pipeline with at least repo"}},
		{"null.yml", []string{"1:1: file is empty, expected a pipeline with at least repo"}},
		{"not-mapping.yml", []string{"1:1: expected a mapping of keys such as name, repo and build, got a list"}},
		{"multi-doc.yml", []string{
			"2:1: file contains more than one YAML document, put each pipeline in its own file"}},
		{"duplicate-key.yml", []string{
			"2:1: repo: duplicate key, first set at line 1",
			"7:5: build.args.A: duplicate key, first set at line 6",
		}},
		{"merge-key.yml", []string{
			`4:1: deploy: missing required key "container", for example "container: hello"`,
			"5:3: deploy: merge keys (<<) are not supported, write the keys out instead",
		}},

		// Keys and types.
		{"unknown-key.yml", []string{
			`1:1: unknown key "nmae" at top level, did you mean "name"?`,
			`3:1: build: missing required key "image", for example "image: acme/hello"`,
			`4:3: unknown key "imgae" in build, did you mean "image"?`,
			`9:3: unknown key "helth" in deploy, did you mean "health"?`,
			`11:3: unknown key "colour" in deploy, known keys are ` + deployKeys,
		}},
		{"wrong-types.yml", []string{
			"2:5: on: expected a mapping, got a list",
			"4:3: build: expected a mapping, got a list",
			"6:14: deploy.container: expected a string, got a list",
			`7:9: deploy.port: expected an integer, got the string "abc"`,
			"10:5: deploy.env: expected a mapping of names to values, got a list",
		}},
		{"wrong-types-2.yml", []string{
			`4:15: on.push.branches: expected a list such as ["main"], got the string "main"`,
			"6:9: build.image: value is empty, set a value or remove the key",
			"7:9: build.args: expected a mapping of names to values, got a list",
			`10:9: deploy.port: expected an integer, got the string "8080"`,
			`12:11: deploy.health: expected a mapping, got the string "/healthz"`,
		}},
		{"duration.yml", []string{
			"8:17: deploy.stop_timeout: invalid timeout 1.5s, use a whole number of seconds such as 10s",
			"10:14: deploy.health.timeout: invalid duration 30, add a unit such as 30s",
		}},
		{"duration-2.yml", []string{
			"8:17: deploy.stop_timeout: invalid timeout -5s, use a whole number of seconds such as 10s",
			`10:14: deploy.health.timeout: invalid duration "soon", expected a number with a unit such as 30s or 2m`,
		}},
		{"duration-3.yml", []string{"9:14: deploy.health.timeout: invalid timeout 0s, it must be positive"}},

		// Top-level values.
		{"repo-form.yml", []string{
			`1:7: repo: invalid repository "acme", expected the GitHub owner/name such as "acme/hello"`}},
		{"repo-extra.yml", []string{
			`1:7: repo: invalid repository "acme/web/extra", expected the GitHub owner/name such as "acme/hello"`}},
		{"repo-missing.yml", []string{`1:1: missing required key "repo", for example "repo: acme/hello"`}},
		{"name.yml", []string{`1:7: name: invalid pipeline name "Hello World", use ` + pipelineNameRule}},
		{"Upper_Case.yml", []string{`1:1: name: the file name gives the invalid pipeline name "Upper_Case", ` +
			"add a name key with " + pipelineNameRule}},
		{"on-empty.yml", []string{
			`2:1: on: no events listed, add push or remove "on" to build pushes to the default branch`}},
		{"glob.yml", []string{
			`4:24: on.push.branches[1]: invalid pattern "release/[0-9", ` +
				`check that every [ and { is closed and \ escapes a character`,
			`4:40: on.push.branches[2]: invalid pattern "!main", negated patterns are not supported, use the matching _ignore key`,
			"4:49: on.push.branches[3]: empty pattern, remove it or write a branch name",
			`5:12: on.push.tags[0]: invalid pattern "v{1,2", ` +
				`check that every [ and { is closed and \ escapes a character`,
		}},

		// Build.
		{"image-case.yml", []string{
			`3:10: build.image: invalid image name "Acme/Web", Docker repository names must be lowercase`}},
		{"image-tag.yml", []string{`3:10: build.image: invalid image name "acme/web:latest", ` +
			`remove the tag ":latest" because quai tags each build with its commit`}},
		{"image-empty-component.yml", []string{`3:10: build.image: invalid image name "acme//web", ` +
			`path component "" must be lowercase letters and digits separated by ".", "_" or "-"`}},
		{"image-registry-port.yml", []string{`3:10: build.image: invalid image name ` +
			`"registry.example.com:99999/web", registry port "99999" is not a number from 1 to 65535`}},
		{"image-missing.yml", []string{
			`2:1: build: missing required key "image", for example "image: acme/hello"`}},
		{"build-null.yml", []string{
			`2:1: build: missing required key "image", for example "image: acme/hello"`}},
		{"build-paths.yml", []string{
			`4:12: build.context: path "../outside" must be relative and stay inside the repository`,
			`5:15: build.dockerfile: path "/etc/Dockerfile" must be relative and stay inside the repository`,
		}},

		// Deploy.
		{"deploy-no-build.yml", []string{
			"2:1: deploy: nothing to deploy without a build block, add build.image"}},
		{"container.yml", []string{
			`5:14: deploy.container: invalid container name "-web", ` + containerRule}},
		{"container-missing.yml", []string{
			`4:1: deploy: missing required key "container", for example "container: hello"`,
			`4:1: deploy: missing required key "port", for example "port: 8080"`,
		}},
		{"port.yml", []string{
			"6:9: deploy.port: port 70000 is out of range, use 1 to 65535",
			`7:12: deploy.publish: invalid address "127.0.0.1:0", port "0" is not a number from 1 to 65535`,
		}},
		{"network.yml", []string{
			`7:12: deploy.network: invalid value "overlay", expected one of "bridge", "host"`}},
		{"publish-host.yml", []string{`7:12: deploy.publish: invalid address "localhost:8080", ` +
			`"localhost" is not an IP address (host names are not allowed)`}},
		{"publish-missing.yml", []string{`4:1: deploy: missing required key "publish" on the bridge ` +
			`network, for example "publish: 127.0.0.1:8080"`}},
		{"publish-on-host-network.yml", []string{
			"8:3: deploy.publish: not used on the host network, remove it"}},
		{"restart.yml", []string{`8:12: deploy.restart: invalid value "sometimes", ` +
			`expected one of "no", "always", "on-failure", "unless-stopped"`}},
		{"health-path.yml", []string{
			`9:11: deploy.health.path: invalid path "healthz", it must start with "/"`}},
		{"env-names.yml", []string{
			`5:5: build.args.BASE-IMAGE: invalid variable name "BASE-IMAGE", ` + envRule,
			`11:5: deploy.env.1BAD: invalid variable name "1BAD", ` + envRule,
			"13:11: deploy.env.EMPTY: value is empty, set a value or remove the key",
		}},
		{"vault-conflict.yml", []string{
			"10:5: deploy.env.APPROLE_ID: conflicts with deploy.vault, which sets APPROLE_ID, remove it from env",
			"11:5: deploy.env.VAULT_ENDPOINT: conflicts with deploy.vault, which sets VAULT_ENDPOINT, " +
				"remove it from env",
		}},
		{"vault-approle-missing.yml", []string{
			`8:3: deploy.vault: missing required key "approle", for example "approle: hello-app"`,
			`9:14: deploy.vault.address: invalid Vault address "vault.example.com", ` +
				"expected a URL such as https://vault.example:8200",
		}},

		{"haproxy.yml", []string{
			"7:3: deploy.publish: not used with haproxy, which gives each container a free loopback port: remove it",
			`9:13: deploy.haproxy.socket: invalid path "run/haproxy.sock", use an absolute path such as /run/haproxy/admin.sock`,
			`10:14: deploy.haproxy.backend: invalid HAProxy name "landing page", use letters, digits, "_", ".", ":" or "-"`,
			"11:14: deploy.haproxy.servers: want exactly two server names (one serves while the other waits), got 1",
			"12:20: deploy.haproxy.drain_timeout: invalid duration 0s, it must be positive",
			"13:12: deploy.haproxy.watch: invalid duration -1s, use 0s to turn the watch off",
			"14:14: deploy.haproxy.max_5xx: invalid count -2, it cannot be negative",
			`15:5: unknown key "check" in deploy.haproxy, known keys are socket, backend, servers, state_file, ` +
				"check_timeout, drain_timeout, watch, max_5xx",
		}},
		{"haproxy-host.yml", []string{
			"7:3: deploy.network: host cannot be used with haproxy, whose two slots need two ports: use bridge",
			`8:3: deploy.haproxy: missing required key "socket", for example "socket: /run/haproxy/admin.sock"`,
			`10:14: deploy.haproxy.servers: the two servers must differ, both are "web_a"`,
		}},

		// Steps.
		{"steps.yml", []string{
			`3:5: steps[0]: missing required key "image", for example "image: busybox:stable"`,
			`4:5: unknown key "imgae" in steps[0], did you mean "image"?`,
			`6:11: steps[1].name: duplicate step name "test", first used at line 3, rename one of them`,
			`8:15: steps[1].commands: no commands listed, add at least one such as "make test"`,
			`9:11: steps[2].name: invalid step name "Lint Code", use at most 63 letters, digits, "_", "." ` +
				`or "-", starting with a letter or digit, such as "unit-tests"`,
			`10:12: steps[2].image: invalid image "golang:1.26:extra", it has more than one tag`,
			`11:15: steps[2].commands: expected a list such as ["make test"], got the string "make lint"`,
			`12:5: steps[3]: missing required key "name", for example "name: test"`,
			"13:22: steps[3].commands[1]: empty command, remove it",
			"15:7: steps[3].env.CI: variable CI is set by quai for every step, use another name",
			"16:7: steps[3].env.QUAI_RUN_ID: variable QUAI_RUN_ID is set by quai for every step, use another name",
			"19:14: steps[3].timeout: invalid duration 90, add a unit such as 90s",
			`21:12: steps[4].image: invalid image "$image", the only image variable is "$build", ` +
				"the image this run builds",
			"26:7: steps[4].secrets.TOKEN: also set in steps[4].env, remove one of them",
			`28:7: unknown key "branch" in steps[4].when, did you mean "branches"?`,
			`29:22: steps[4].when.events[1]: invalid value "deploy", expected one of "push", "tag", ` +
				`"pull_request", "schedule", "manual"`,
			`30:16: steps[4].when.status[0]: invalid value "failed", expected one of "success", "failure"`,
			`31:13: steps[4].when.tags: expected a list such as ["v*"], got the string "v*"`,
		}},
		{"steps-shape.yml", []string{
			"3:3: steps: expected a list of steps, each a mapping with name, image and commands, got a mapping"}},
		{"steps-build.yml", []string{
			`5:12: steps[0].image: "$build" is the image this run builds, but the pipeline has no build ` +
				"block: add one or use another image",
			"7:14: warning: steps[0].timeout: 10m0s is longer than the run timeout 5m0s, which ends the step first",
			`8:5: steps[1]: missing required key "name", for example "name: test"`,
			`8:5: steps[1]: missing required key "image", for example "image: busybox:stable"`,
			`8:5: steps[1]: missing required key "commands", for example "commands: [\"make test\"]"`,
		}},

		// Secrets.
		{"secrets.yml", []string{
			`6:3: warning: build.secrets: build arguments stay in the image history, where "docker history" ` +
				"shows them to anyone who can pull the image, so prefer step secrets or deploy.secrets",
			"7:5: build.secrets.TOKEN: also set in build.args, remove one of them",
			`8:13: build.secrets.NO_KEY: invalid secret reference "ci/npm", add the key after "#", ` +
				`as in "app/db#password"`,
			`9:16: build.secrets.EMPTY_KEY: invalid secret reference "ci/npm#", add the key after "#", ` +
				`as in "app/db#password"`,
			`10:14: build.secrets.NO_PATH: invalid secret reference "#token", the path before "#" is empty`,
			`11:18: build.secrets.EMPTY_MOUNT: invalid secret reference ":ci/npm#token", the mount before ":" ` +
				`is empty, remove ":" to read from the secret mount`,
			`12:16: build.secrets.BAD_MOUNT: invalid secret reference "kv v2:ci/npm#token", it contains white space`,
			`13:17: build.secrets.BAD_MOUNT2: invalid secret reference "/kv:ci/npm#token", mount "/kv" must be ` +
				`names of letters, digits, "_", "." or "-" separated by "/"`,
			`14:15: build.secrets.TWO_KEYS: invalid secret reference "ci/npm#a#b", it contains more than one "#"`,
			`15:11: build.secrets.DOTS: invalid secret reference "ci/../npm#token", path "ci/../npm" must be ` +
				`names separated by single "/", without "." or ".." and without a "/" at either end`,
			`16:12: build.secrets.SLASH: invalid secret reference "/ci/npm#token", path "/ci/npm" must be ` +
				`names separated by single "/", without "." or ".." and without a "/" at either end`,
			`17:5: build.secrets.1BAD: invalid variable name "1BAD", ` + envRule,
			"27:5: deploy.secrets.APP_ENV: also set in deploy.env, remove one of them",
			"28:5: deploy.secrets.APPROLE_ID: conflicts with deploy.vault, which sets APPROLE_ID, " +
				"remove it from secrets",
			"29:11: deploy.secrets.LIST: expected a string, got a list",
			"30:11: deploy.secrets.EMPTY: value is empty, set a value or remove the key",
		}},

		// Triggers.
		{"schedule.yml", []string{
			`4:13: on.schedule[0].cron: invalid cron spec "30 2 * *" (expected exactly 5 fields, found 4: ` +
				"[30 2 * *]), " + cronRule,
			`5:13: on.schedule[1].cron: invalid cron spec "61 * * * *" (end of range (61) above maximum (59): ` +
				"61), " + cronRule,
			`6:13: on.schedule[2].cron: invalid cron spec "CRON_TZ=Europe/Paris 30 2 * * *", ` +
				"set the time zone with the timezone key instead",
			`7:13: on.schedule[3].cron: invalid cron spec "@every 10s", @every needs at least 1m between runs`,
			`8:13: on.schedule[4].cron: invalid cron spec "0 0 30 2 *", it matches no date, ` +
				"check the day of month and month",
			`10:17: on.schedule[5].timezone: unknown time zone "Europe/Pariss", ` +
				"use an IANA name such as Europe/Paris or UTC",
			`12:17: on.schedule[6].timezone: invalid time zone "Local", which depends on the machine quai ` +
				"runs on, name a zone such as Europe/Paris or UTC",
			`14:15: on.schedule[7].branch: invalid branch "refs/heads/main", ` +
				"write the branch name without refs/heads/",
			`16:15: on.schedule[8].branch: invalid branch "feature/*", git does not accept it as a branch ` +
				"name (see git check-ref-format)",
			`17:7: on.schedule[9]: missing required key "cron", for example "cron: \"0 3 * * *\""`,
			`19:7: unknown key "tz" in on.schedule[10], known keys are cron, timezone, branch`,
		}},
		{"schedule-shape.yml", []string{
			`3:13: on.schedule: expected a list of schedules such as [{cron: "0 3 * * *"}], ` +
				`got the string "@daily"`}},
		{"pull-request.yml", []string{
			`4:16: on.pull_request.branches[0]: invalid pattern "[main", ` +
				`check that every [ and { is closed and \ escapes a character`,
			`5:21: on.pull_request.types[1]: invalid value "merged", expected one of "opened", "synchronize", ` +
				`"reopened", "closed", "edited", "ready_for_review", "labeled", "unlabeled"`,
			`6:13: on.pull_request.paths[0]: invalid pattern "/src/**", changed paths are relative to the ` +
				"repository root, remove the leading /",
			`6:24: warning: on.pull_request.paths[1]: changed paths never start with "./", so "./docs/**" ` +
				`matches nothing, write "docs/**"`,
			`7:19: on.pull_request.paths_ignore: expected a list such as ["src/**"], got the string ""`,
			`8:13: on.pull_request.deploy: expected true or false, got the string "yes"`,
			`9:5: unknown key "fork" in on.pull_request, known keys are branches, types, paths, paths_ignore, deploy`,
		}},
		{"pull-request-types.yml", []string{
			"4:12: on.pull_request.types: empty list, so no pull request starts the pipeline, " +
				"remove types to start on opened, synchronize and reopened"}},
		{"push-filters.yml", []string{
			`4:23: on.push.branches_ignore[0]: invalid pattern "release/[0-9", ` +
				`check that every [ and { is closed and \ escapes a character`,
			`5:18: on.push.tags_ignore: expected a list such as ["v*"], got the string "v1"`,
			"6:13: on.push.paths[0]: empty pattern, remove it or write a path such as src/**",
			`7:20: on.push.paths_ignore[0]: invalid pattern "!docs/**", negated patterns are not supported, ` +
				"use the matching _ignore key",
			`8:5: unknown key "path" in on.push, did you mean "paths"?`,
		}},

		// Run limits.
		{"concurrency.yml", []string{
			"2:10: timeout: invalid duration 0s, it must be positive",
			`4:22: concurrency.cancel_superseded: expected true or false, got the string "yes"`,
			"5:10: concurrency.limit: invalid limit 0, allow at least 1 run at a time",
			`6:3: unknown key "max" in concurrency, known keys are cancel_superseded, limit`,
			`9:3: warning: on: no event starts this pipeline and only "quai run" can run it, ` +
				"add push, pull_request or schedule",
		}},
		{"concurrency-2.yml", []string{
			"2:10: timeout: invalid duration 90, add a unit such as 90s",
			"3:14: concurrency: expected a mapping, got the integer 2",
			`5:11: on.manual: expected true or false, got the string "false"`,
		}},

		// Every error in one file is reported, in file order.
		{"multi-error.yml", []string{
			`1:7: name: invalid pipeline name "Web", use ` + pipelineNameRule,
			`2:7: repo: invalid repository "acme", expected the GitHub owner/name such as "acme/hello"`,
			`5:16: on.push.branches[0]: invalid pattern "[main", ` +
				`check that every [ and { is closed and \ escapes a character`,
			`7:10: build.image: invalid image name "Acme/Web:latest", ` +
				`remove the tag ":latest" because quai tags each build with its commit`,
			`9:14: deploy.container: invalid container name "web!", ` + containerRule,
			"10:9: deploy.port: port 0 is out of range, use 1 to 65535",
			`12:12: deploy.publish: invalid address "127.0.0.1", ` +
				"expected IP:port such as 127.0.0.1:8080 or [::1]:8080",
			`13:12: deploy.restart: invalid value "never", ` +
				`expected one of "no", "always", "on-failure", "unless-stopped"`,
			"14:17: deploy.stop_timeout: invalid duration 10, add a unit such as 10s",
			`16:11: deploy.health.path: invalid path "health", it must start with "/"`,
			`17:14: deploy.health.timeout: invalid duration "forever", ` +
				"expected a number with a unit such as 30s or 2m",
			`19:5: deploy.env.A B: invalid variable name "A B", ` + envRule,
			"20:5: deploy.env.APPROLE_SECRET_ID: conflicts with deploy.vault, " +
				"which sets APPROLE_SECRET_ID, remove it from env",
			`21:3: deploy.vault: missing required key "approle", for example "approle: hello-app"`,
			`22:3: unknown key "extra" in deploy, known keys are ` + deployKeys,
		}},
	}

	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			data := readTestdata(t, filepath.Join("testdata", "invalid", tt.file))
			p, problems := Parse(tt.file, data)
			if p != nil {
				t.Errorf("Parse returned a pipeline for an invalid file: %+v", p)
			}
			if !HasErrors(problems) {
				t.Errorf("HasErrors = false, want true")
			}
			for _, pr := range problems {
				if pr.File != tt.file {
					t.Errorf("problem file = %q, want %q", pr.File, tt.file)
				}
			}
			if got := positioned(problems); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}

	// Every invalid file needs a row, so no file is left without checks.
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !tested[filepath.Base(f)] {
			t.Errorf("testdata file %s has no row in the table", f)
		}
	}
}

func TestParseValid(t *testing.T) {
	defaultPush := &PushTrigger{}
	// defaults sets what every file below leaves out: the run timeout,
	// concurrency and manual runs.
	defaults := func(p *Pipeline) *Pipeline {
		p.Timeout = time.Hour
		p.Concurrency = Concurrency{CancelSuperseded: true, Limit: 1}
		p.On.Manual = true
		return p
	}
	tests := []struct {
		file         string
		want         *Pipeline
		wantWarnings []string
	}{
		{
			file: "hello.yml",
			want: defaults(&Pipeline{
				Name: "hello", File: "hello.yml", Repo: "acme/hello",
				On: Triggers{Push: &PushTrigger{Branches: []string{"main"}}},
				Build: &Build{
					Context: ".", Dockerfile: "Dockerfile", Image: "quai-example/hello",
					Args: map[string]string{"BASE": "busybox:stable"},
				},
				Deploy: &Deploy{
					Container: "hello", Port: 8080, Publish: "127.0.0.1:18567", Network: "bridge",
					Health:  Health{Path: "/", Timeout: 30 * time.Second},
					Env:     map[string]string{"APP_ENV": "production"},
					Vault:   &VaultLogin{AppRole: "1interviewparjour-app"},
					Restart: "unless-stopped", StopTimeout: 10 * time.Second, KeepImages: 5,
				},
			}),
		},
		{
			file: "minimal.yml",
			want: defaults(&Pipeline{Name: "minimal", File: "minimal.yml", Repo: "acme/minimal", On: Triggers{Push: defaultPush}}),
		},
		{
			file: "full.yaml",
			want: defaults(&Pipeline{
				Name: "full.app_2", File: "full.yaml", Repo: "Acme/Full-App",
				CloneURL: "https://git.example.com/acme/full.git",
				On: Triggers{Push: &PushTrigger{
					Branches: []string{"main", "release/*", "feature/**"},
					Tags:     []string{"v*"},
				}},
				Build: &Build{
					Context: "services/web", Dockerfile: "docker/Dockerfile.prod",
					Image: "registry.example.com:5000/acme/full-app",
					// Scalars keep their spelling: 1.10 is not the float 1.1.
					Args: map[string]string{"BASE": "busybox:stable", "VERSION": "1.10"},
				},
				Deploy: &Deploy{
					Container: "full-app", Port: 8080, Network: "host",
					Health: Health{Path: "/healthz?full=1", Timeout: 90 * time.Second},
					Env:    map[string]string{"APP_ENV": "production", "WORKERS": "4", "EMPTY": ""},
					Vault: &VaultLogin{
						AppRole: "full-app", Address: "https://vault.example.com:8200",
					},
					Restart: "on-failure", StopTimeout: time.Minute, KeepImages: 5,
				},
			}),
		},
		{
			file: "build-only.yml",
			want: defaults(&Pipeline{
				Name: "build-only", File: "build-only.yml", Repo: "acme/lib", CloneURL: "/srv/git/lib.git",
				On: Triggers{Push: &PushTrigger{Tags: []string{"v*"}}},
				Build: &Build{
					Context: ".", Dockerfile: "Dockerfile", Image: "acme/lib", Args: map[string]string{},
				},
			}),
		},
		{
			file: "anchors.yml",
			want: defaults(&Pipeline{
				Name: "anchors", File: "anchors.yml", Repo: "acme/anchors",
				On: Triggers{Push: &PushTrigger{
					Branches: []string{"main", "next"}, Tags: []string{"main", "next"},
				}},
				Build: &Build{Context: ".", Dockerfile: "Dockerfile", Image: "acme/anchors"},
				Deploy: &Deploy{
					Container: "anchors", Port: 8080, Publish: "[::1]:18080", Network: "bridge",
					Health:  Health{Path: "/", Timeout: 30 * time.Second},
					Env:     map[string]string{"MODE": "blue"},
					Restart: "unless-stopped", StopTimeout: 10 * time.Second, KeepImages: 5,
				},
			}),
		},
		{
			file: "on-key.yml",
			want: defaults(&Pipeline{
				Name: "on-key", File: "on-key.yml", Repo: "acme/on-key",
				On: Triggers{Push: &PushTrigger{Branches: []string{"refs/heads/main", "develop"}}},
			}),
			wantWarnings: []string{`7:16: warning: on.push.branches[0]: patterns match names without ` +
				`"refs/heads/", so "refs/heads/main" matches nothing`},
		},
		{
			file: "haproxy.yml",
			want: defaults(&Pipeline{
				Name: "haproxy", File: "haproxy.yml", Repo: "acme/landing", On: Triggers{Push: defaultPush},
				Build: &Build{Context: ".", Dockerfile: "Dockerfile", Image: "acme/landing"},
				Deploy: &Deploy{
					Container: "landing", Port: 80, Network: "bridge",
					Health:  Health{Path: "/", Timeout: 30 * time.Second},
					Restart: "unless-stopped", StopTimeout: 10 * time.Second, KeepImages: 5,
					HAProxy: &HAProxy{
						Socket: "/run/haproxy/admin.sock", Backend: "landing_page",
						Servers:      []string{"react_srv", "react_srv_b"},
						StateFile:    "/var/lib/haproxy/server-state",
						CheckTimeout: 30 * time.Second, DrainTimeout: 30 * time.Second, Watch: 10 * time.Second,
					},
				},
			}),
		},
		{
			file: "push-null.yml",
			want: defaults(&Pipeline{Name: "push-null", File: "push-null.yml", Repo: "acme/push-null", On: Triggers{Push: defaultPush}}),
		},
		{
			file: "steps.yml",
			want: &Pipeline{
				Name: "steps", File: "steps.yml", Repo: "acme/steps",
				On:    Triggers{Push: defaultPush, Manual: true},
				Build: &Build{Context: ".", Dockerfile: "Dockerfile", Image: "acme/steps"},
				Steps: []Step{
					{
						Name: "unit-tests", Image: "golang:1.26",
						Commands: []string{"go vet ./...", "go test ./..."},
						Env:      map[string]string{"GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"},
						Secrets: map[string]SecretRef{
							"DATABASE_URL": {Mount: "secret", Path: "1interviewparjour/mysql", Key: "url"},
						},
						Timeout: 10 * time.Minute,
					},
					{Name: "smoke", Image: "$build", Commands: []string{"/app --version"}},
					{
						Name: "release-notes",
						Image: "registry.example.com:5000/tools/notes@sha256:" +
							"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
						Commands: []string{"notes"},
						When:     When{Tags: []string{"v*"}, Events: []Event{EventTag}},
					},
					{
						Name: "notify", Image: "busybox:stable", Commands: []string{"echo failed"},
						Secrets: map[string]SecretRef{"WEBHOOK": {Mount: "kv", Path: "team/chat", Key: "webhook"}},
						When:    When{Branches: []string{"main", "release/**"}, Status: []string{"failure"}},
					},
				},
				Timeout:     30 * time.Minute,
				Concurrency: Concurrency{CancelSuperseded: true, Limit: 1},
			},
		},
		{
			file: "triggers.yml",
			want: &Pipeline{
				Name: "triggers", File: "triggers.yml", Repo: "acme/triggers",
				On: Triggers{
					Push: &PushTrigger{
						Branches:       []string{"main", "release/*"},
						BranchesIgnore: []string{"release/old-*"},
						TagsIgnore:     []string{"nightly-*"},
						Paths:          []string{"src/**", "go.mod"},
						PathsIgnore:    []string{"**/*.md"},
					},
					PullRequest: &PullRequestTrigger{
						Branches:    []string{"main"},
						Types:       []string{"opened", "synchronize", "reopened", "ready_for_review"},
						Paths:       []string{"src/**"},
						PathsIgnore: []string{"docs/**"},
					},
					Schedule: []Schedule{
						{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
						{Cron: "@every 6h", Timezone: "UTC", Branch: "release/2.x"},
						{Cron: "@daily", Timezone: "UTC"},
					},
				},
				Timeout:     time.Hour,
				Concurrency: Concurrency{Limit: 3},
			},
		},
		{
			file: "pull-request.yml",
			want: &Pipeline{
				Name: "pull-request", File: "pull-request.yml", Repo: "acme/pr",
				On: Triggers{
					PullRequest: &PullRequestTrigger{Types: []string{"opened", "synchronize", "reopened"}},
					Manual:      true,
				},
				Build: &Build{Context: ".", Dockerfile: "Dockerfile", Image: "acme/pr"},
				Deploy: &Deploy{
					Container: "pr", Port: 8080, Publish: "127.0.0.1:18080", Network: "bridge",
					Health:  Health{Path: "/healthz", Timeout: 30 * time.Second},
					Restart: "unless-stopped", StopTimeout: 10 * time.Second, KeepImages: 5,
				},
				Timeout:     time.Hour,
				Concurrency: Concurrency{CancelSuperseded: true, Limit: 2},
			},
		},
		{
			file: "secrets.yml",
			want: defaults(&Pipeline{
				Name: "secrets", File: "secrets.yml", Repo: "acme/secrets", On: Triggers{Push: defaultPush},
				Build: &Build{
					Context: ".", Dockerfile: "Dockerfile", Image: "acme/secrets",
					Args:    map[string]string{"VERSION": "1"},
					Secrets: map[string]SecretRef{"NPM_TOKEN": {Mount: "secret", Path: "ci/npm", Key: "token"}},
				},
				Deploy: &Deploy{
					Container: "secrets", Port: 8080, Publish: "127.0.0.1:18081", Network: "bridge",
					Health: Health{Path: "/", Timeout: 30 * time.Second},
					Env:    map[string]string{"APP_ENV": "production"},
					Vault:  &VaultLogin{AppRole: "secrets-app"},
					Secrets: map[string]SecretRef{
						"DATABASE_URL": {Mount: "secret", Path: "1interviewparjour/mysql", Key: "url"},
						"TLS_KEY":      {Mount: "pki-kv", Path: "certs/web", Key: "key"},
						"LEGACY":       {Mount: "secret", Path: "secret/old/app", Key: "password"},
					},
					Restart: "unless-stopped", StopTimeout: 10 * time.Second, KeepImages: 5,
				},
			}),
			wantWarnings: []string{
				`7:3: warning: build.secrets: build arguments stay in the image history, where "docker history" ` +
					"shows them to anyone who can pull the image, so prefer step secrets or deploy.secrets",
				`22:13: warning: deploy.secrets.LEGACY: the path "secret/old/app" starts with the mount name, ` +
					`but "path#key" reads from the secret mount already, so write "old/app#password"`,
			},
		},
	}

	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			data := readTestdata(t, filepath.Join("testdata", "valid", tt.file))
			got, problems := Parse(tt.file, data)
			if HasErrors(problems) {
				t.Fatalf("unexpected errors: %q", positioned(problems))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pipeline:\n got %s\nwant %s", dump(got), dump(tt.want))
			}
			if gotWarnings := positioned(problems); !reflect.DeepEqual(gotWarnings, tt.wantWarnings) {
				t.Errorf("warnings:\n got %q\nwant %q", gotWarnings, tt.wantWarnings)
			}
		})
	}

	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !tested[filepath.Base(f)] {
			t.Errorf("testdata file %s has no row in the table", f)
		}
	}
}

// dump renders a pipeline with its pointed-to blocks for failure messages.
func dump(p *Pipeline) string {
	if p == nil {
		return "<nil>"
	}
	out, err := yaml.Marshal(p)
	if err != nil {
		return err.Error()
	}
	return "\n" + string(out)
}

func TestParseOnKeyIsString(t *testing.T) {
	data := []byte("repo: acme/web\non:\n  push:\n    branches: [develop]\n")

	// yaml.v3 follows YAML 1.2, where a bare on is a string, not true.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	key := doc.Content[0].Content[2]
	if key.Tag != "!!str" || key.Value != "on" {
		t.Errorf("on key decoded as %s %q, want !!str \"on\"", key.Tag, key.Value)
	}

	p, problems := Parse("web.yml", data)
	if p == nil {
		t.Fatalf("Parse failed: %q", positioned(problems))
	}
	if p.On.Push == nil || !reflect.DeepEqual(p.On.Push.Branches, []string{"develop"}) {
		t.Errorf("On.Push = %+v, want branches [develop]", p.On.Push)
	}
}

func TestParseDefaultNameFromFile(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"web.yml", "web"},
		{"pipelines.d/api.v2.yaml", "api.v2"},
		{"/abs/dir/my_app.yml", "my_app"},
	}
	for _, tt := range tests {
		p, problems := Parse(tt.file, []byte("repo: acme/web\n"))
		if p == nil {
			t.Fatalf("Parse(%q) failed: %q", tt.file, positioned(problems))
		}
		if p.Name != tt.want {
			t.Errorf("Parse(%q).Name = %q, want %q", tt.file, p.Name, tt.want)
		}
		if p.File != tt.file {
			t.Errorf("Parse(%q).File = %q, want the file argument", tt.file, p.File)
		}
	}
}

func TestLoadDirValid(t *testing.T) {
	dir := filepath.Join("testdata", "valid")
	pipelines, problems, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if HasErrors(problems) {
		t.Errorf("unexpected errors: %q", positioned(problems))
	}
	var names []string
	for _, p := range pipelines {
		names = append(names, p.Name)
		if filepath.Dir(p.File) != dir {
			t.Errorf("pipeline %s: File = %q, want a path in %s", p.Name, p.File, dir)
		}
	}
	want := []string{"anchors", "build-only", "full.app_2", "haproxy", "hello", "minimal", "on-key",
		"pull-request", "push-null", "secrets", "steps", "triggers"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
	warned := map[string]int{}
	for _, p := range problems {
		warned[filepath.Base(p.File)]++
	}
	if want := map[string]int{"on-key.yml": 1, "secrets.yml": 2}; !reflect.DeepEqual(warned, want) {
		t.Errorf("warnings per file = %v, want %v", warned, want)
	}
}

func TestLoadDirDuplicateNames(t *testing.T) {
	dir := filepath.Join("testdata", "dup")
	pipelines, problems, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pipelines) != 1 || pipelines[0].Name != "other" {
		t.Errorf("pipelines = %v, want only \"other\"", pipelines)
	}
	a, web := filepath.Join(dir, "a.yml"), filepath.Join(dir, "web.yml")
	want := []string{
		a + `:1:7: duplicate pipeline name "web", also used at ` + web + ":1:1, rename one of them",
		web + `:1:1: duplicate pipeline name "web", also used at ` + a + ":1:7, rename one of them",
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

func TestLoadDirReportsAllFiles(t *testing.T) {
	dir := filepath.Join("testdata", "invalid")
	pipelines, problems, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pipelines) != 0 {
		t.Errorf("LoadDir returned %d pipelines from invalid files", len(pipelines))
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	withProblems := map[string]int{}
	for _, p := range problems {
		withProblems[p.File]++
	}
	for _, f := range files {
		if withProblems[f] == 0 {
			t.Errorf("no problem reported for %s", f)
		}
	}
	if got := withProblems[filepath.Join(dir, "multi-error.yml")]; got != 15 {
		t.Errorf("multi-error.yml has %d problems, want 15", got)
	}
	for i := 1; i < len(problems); i++ {
		a, b := problems[i-1], problems[i]
		if a.File > b.File || (a.File == b.File && a.Line > b.Line) {
			t.Errorf("problems not sorted: %q before %q", a, b)
		}
	}
}

func TestLoadDirSkipsAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", "repo: acme/b\n")
	write("a.yml", "repo: acme/a\n")
	write("notes.txt", "repo: [\n")
	write("backup.yml~", "repo: [\n")
	if err := os.Mkdir(filepath.Join(dir, "dir.yml"), 0o755); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.yml")
	if err := os.Symlink(filepath.Join(dir, "missing-target"), broken); err != nil {
		t.Fatal(err)
	}

	pipelines, problems, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pipelines) != 2 || pipelines[0].Name != "a" || pipelines[1].Name != "b" {
		t.Errorf("pipelines = %v, want a and b", pipelines)
	}
	if len(problems) != 1 {
		t.Fatalf("problems = %q, want one for the broken link", problems)
	}
	p := problems[0]
	if p.File != broken || p.Line != 0 || !strings.HasPrefix(p.Message, "reading file: ") {
		t.Errorf("problem = %+v, want a read error for %s without position", p, broken)
	}
}

func TestLoadDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pipelines.d")
	_, _, err := LoadDir(dir)
	if err == nil {
		t.Fatal("LoadDir of a missing directory returned no error")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	for _, part := range []string{dir, "create it", "name the folder"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a.yml", Line: 3, Column: 5, Message: "bad"}, "a.yml:3:5: bad"},
		{Problem{File: "a.yml", Line: 3, Column: 5, Message: "odd", Warning: true}, "a.yml:3:5: warning: odd"},
		{Problem{File: "a.yml", Line: 3, Message: "syntax"}, "a.yml:3: syntax"},
		{Problem{File: "a.yml", Message: "unreadable"}, "a.yml: unreadable"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestHasErrors(t *testing.T) {
	warning := Problem{Message: "w", Warning: true}
	failure := Problem{Message: "e"}
	tests := []struct {
		problems []Problem
		want     bool
	}{
		{nil, false},
		{[]Problem{warning}, false},
		{[]Problem{warning, failure}, true},
		{[]Problem{failure}, true},
	}
	for _, tt := range tests {
		if got := HasErrors(tt.problems); got != tt.want {
			t.Errorf("HasErrors(%v) = %v, want %v", tt.problems, got, tt.want)
		}
	}
}

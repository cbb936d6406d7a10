package runner

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// testPEM is a made-up key in PEM layout: it is not a valid key.
const testPEM = "-----BEGIN PRIVATE KEY-----\n" +
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" +
	"MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n" +
	"NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n" +
	"-----END PRIVATE KEY-----\n"

func TestMaskerReplace(t *testing.T) {
	pemLines := strings.Split(strings.TrimSuffix(testPEM, "\n"), "\n")
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"no secrets", nil, "token=s3cr3t\n", "token=s3cr3t\n"},
		{"whole value", []string{"s3cr3t-value"}, "token=s3cr3t-value ok\n", "token=******** ok\n"},
		{"every occurrence", []string{"s3cr3t"}, "s3cr3t and s3cr3t\n", "******** and ********\n"},
		{"four bytes masked", []string{"abcd"}, "xabcdx\n", "x********x\n"},
		{"short value untouched", []string{"abc"}, "abc abc\n", "abc abc\n"},
		{"empty value untouched", []string{""}, "text\n", "text\n"},
		{"multi-line value whole", []string{testPEM}, "key:\n" + testPEM + "done\n", "key:\n********done\n"},
		{
			"multi-line value line by line", []string{testPEM},
			"line 2 is " + pemLines[1] + "\nline 4 is " + pemLines[3] + "\n",
			"line 2 is ********\nline 4 is ********\n",
		},
		{
			"multi-line value with CRLF", []string{"first-line\r\nsecond-line\r\n"},
			"a first-line b\nsecond-line\r\n", "a ******** b\n********\r\n",
		},
		{
			"short line of multi-line value untouched", []string{"abc\nlong-line"},
			"abc long-line\n", "abc ********\n",
		},
		{
			"base64 std", []string{"p4ss>>word??"},
			"x " + base64.StdEncoding.EncodeToString([]byte("p4ss>>word??")) + "\n", "x ********\n",
		},
		{
			"base64 url", []string{"p4ss>>word??"},
			"x " + base64.URLEncoding.EncodeToString([]byte("p4ss>>word??")) + "\n", "x ********\n",
		},
		{
			"base64 without padding", []string{"p4ssword"},
			"auth=" + base64.RawStdEncoding.EncodeToString([]byte("p4ssword")) + ";\n", "auth=********;\n",
		},
		{
			"base64 with padding", []string{"p4ssword"},
			"auth=" + base64.StdEncoding.EncodeToString([]byte("p4ssword")) + ";\n", "auth=********;\n",
		},
		{
			"base64 of echo output", []string{"p4ssword"},
			base64.StdEncoding.EncodeToString([]byte("p4ssword\n")) + "\n", "********\n",
		},
		{
			"base64 of multi-line value", []string{testPEM},
			"data: " + base64.StdEncoding.EncodeToString([]byte(testPEM)) + "\n", "data: ********\n",
		},
		{"prefix of another secret", []string{"abcd1234", "abcd1234efgh"}, "x abcd1234efgh y\n", "x ******** y\n"},
		{"shorter of two secrets alone", []string{"abcd1234", "abcd1234efgh"}, "x abcd1234ef y\n", "x ********ef y\n"},
		{"overlapping secrets", []string{"abcdef", "defghi"}, "xabcdefghix\n", "x********x\n"},
		{"secret inside another", []string{"hunter2!", "db://u:hunter2!@h"}, "db://u:hunter2!@h\n", "********\n"},
		{"adjacent occurrences", []string{"abcd"}, "abcdabcd\n", "********\n"},
		{"overlapping occurrences", []string{"aaaa"}, "baaaaab\n", "b********b\n"},
		{"bytes that regexps treat specially", []string{"a.b*c(d)$"}, "1 a.b*c(d)$ 2\n", "1 ******** 2\n"},
		{"near miss untouched", []string{"s3cr3t-value"}, "s3cr3t-valu\n", "s3cr3t-valu\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m masker
			for _, s := range tt.secrets {
				m.add(s)
			}
			got, n, carry := m.replace(nil, []byte(tt.in), 0, true)
			if string(got) != tt.want {
				t.Errorf("replace(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if n != len(tt.in) {
				t.Errorf("replace consumed %d bytes with final set, want all %d", n, len(tt.in))
			}
			if carry != 0 {
				t.Errorf("replace carry = %d with final set, want 0", carry)
			}
		})
	}
}

func TestMaskerAddRebuilds(t *testing.T) {
	var m masker
	m.add("first-secret")
	got, _, _ := m.replace(nil, []byte("first-secret second-secret\n"), 0, true)
	if want := "******** second-secret\n"; string(got) != want {
		t.Errorf("with one secret: %q, want %q", got, want)
	}
	m.add("second-secret")
	got, _, _ = m.replace(nil, []byte("first-secret second-secret\n"), 0, true)
	if want := "******** ********\n"; string(got) != want {
		t.Errorf("after adding another: %q, want %q", got, want)
	}
}

func TestMaskerHoldsBackPossibleSecret(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string // output of a call without final set
		rest    string // bytes of in held back
	}{
		{"start of a secret", []string{"s3cr3t-value"}, "token=s3cr", "token=", "s3cr"},
		{"no secret start", []string{"s3cr3t-value"}, "token=xyz", "token=xyz", ""},
		{"whole secret at the end", []string{"s3cr3t-value"}, "token=s3cr3t-value", "token=", "s3cr3t-value"},
		{"secret that a longer one extends", []string{"abcd", "abcdefgh"}, "x abcdef", "x ", "abcdef"},
		{"lines of a multi-line secret", []string{"line-one\nline-two\n"}, "ok\nline-one\n", "ok\n", "line-one\n"},
		{"finished secret", []string{"s3cr3t-value"}, "s3cr3t-value!", "********!", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m masker
			for _, s := range tt.secrets {
				m.add(s)
			}
			got, n, _ := m.replace(nil, []byte(tt.in), 0, false)
			if string(got) != tt.want {
				t.Errorf("replace = %q, want %q", got, tt.want)
			}
			if rest := tt.in[n:]; rest != tt.rest {
				t.Errorf("held back %q, want %q", rest, tt.rest)
			}
		})
	}
}

// TestMaskerMatchesOracle compares replace with a brute-force masking over
// random secrets and output from a four-letter alphabet, so that secrets
// overlap, nest and repeat often, passing the output whole and in random
// chunks.
func TestMaskerMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomText := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abc\n"[rng.IntN(4)]
		}
		return string(b)
	}
	carried := 0
	for round := range 2000 {
		var m masker
		for range 1 + rng.IntN(4) {
			m.add(randomText(4 + rng.IntN(6)))
		}
		in := randomText(rng.IntN(200))
		want := oracleMask(m.values, in)

		got, _, _ := m.replace(nil, []byte(in), 0, true)
		if string(got) != want {
			t.Fatalf("round %d: replace(%q) with values %q = %q, want %q",
				round, in, valueList(m.values), got, want)
		}

		// Split masks may show as two where whole output shows one.
		chunked, carries := replaceInChunks(&m, in, rng)
		carried += carries
		if squeezeMasks(chunked) != squeezeMasks(want) {
			t.Fatalf("round %d: replace of %q in chunks with values %q = %q, want %q",
				round, in, valueList(m.values), chunked, want)
		}
	}
	if carried == 0 {
		t.Errorf("no chunk ended inside a stretch of masked bytes, so the carry went untested")
	}
}

// replaceInChunks feeds in to m in random chunks the way logWriter does,
// and counts the calls that returned a carry.
func replaceInChunks(m *masker, in string, rng *rand.Rand) (out string, carries int) {
	var masked, pending []byte
	covered := 0
	for len(in) > 0 {
		n := 1 + rng.IntN(min(len(in), 20))
		pending = append(pending, in[:n]...)
		in = in[n:]
		var used int
		masked, used, covered = m.replace(masked, pending, covered, false)
		pending = append(pending[:0], pending[used:]...)
		if covered > 0 {
			carries++
		}
	}
	masked, _, _ = m.replace(masked, pending, covered, true)
	return string(masked), carries
}

// oracleMask marks every byte of in that an occurrence of a value covers,
// then replaces each stretch of marked bytes with mask.
func oracleMask(values map[string]struct{}, in string) string {
	marked := make([]bool, len(in))
	for v := range values {
		for i := 0; i+len(v) <= len(in); i++ {
			if in[i:i+len(v)] == v {
				for j := i; j < i+len(v); j++ {
					marked[j] = true
				}
			}
		}
	}
	var out strings.Builder
	for i := 0; i < len(in); i++ {
		if !marked[i] {
			out.WriteByte(in[i])
			continue
		}
		out.WriteString(mask)
		for i+1 < len(in) && marked[i+1] {
			i++
		}
	}
	return out.String()
}

func squeezeMasks(s string) string {
	for strings.Contains(s, mask+mask) {
		s = strings.ReplaceAll(s, mask+mask, mask)
	}
	return s
}

func valueList(values map[string]struct{}) []string {
	var list []string
	for v := range values {
		list = append(list, v)
	}
	return list
}

func BenchmarkMaskedLogWrite(b *testing.B) {
	const (
		secrets = 20
		size    = 10 << 20
		chunk   = 4 << 10 // a typical read from a container's log stream
	)
	rng := rand.New(rand.NewPCG(3, 4))
	values := make([]string, secrets)
	for i := range values {
		raw := make([]byte, 16+rng.IntN(32))
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		values[i] = base64.RawURLEncoding.EncodeToString(raw)
	}

	// Build-like output where one line in 50 prints a secret or its base64.
	var out bytes.Buffer
	for line := 0; out.Len() < size; line++ {
		fmt.Fprintf(&out, "step %d: compiling package example.com/module/pkg%d with flags -O2 -trimpath", line, line%97)
		if line%50 == 0 {
			v := values[line%secrets]
			if line%100 == 0 {
				v = base64.StdEncoding.EncodeToString([]byte(v))
			}
			out.WriteString(" token=" + v)
		}
		out.WriteByte('\n')
	}
	data := out.Bytes()

	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		sink := &discardLog{}
		w := newLogWriter(sink, 1, nil)
		for _, v := range values {
			w.AddSecret(v)
		}
		for rest := data; len(rest) > 0; {
			n := min(chunk, len(rest))
			_, _ = w.Write(rest[:n])
			rest = rest[n:]
		}
		w.Close()
		if sink.n >= int64(len(data)) {
			b.Fatalf("stored %d bytes of %d: secrets were not masked", sink.n, len(data))
		}
	}
}

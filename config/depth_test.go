package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/batonproxy/baton/internal/fsutil"
)

func TestLoadRefusesLargeFiles(t *testing.T) {
	dir := t.TempDir()
	// Exactly at the limit: loads (a comment pads it).
	at := fileLease + "#" + strings.Repeat("x", maxFileSize-len(fileLease)-2) + "\n"
	if len(at) != maxFileSize {
		t.Fatalf("padding: %d bytes", len(at))
	}
	atPath := filepath.Join(dir, "at.toml")
	if err := os.WriteFile(atPath, []byte(at), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(atPath); err != nil {
		t.Fatalf("file of exactly %d bytes: %v", maxFileSize, err)
	}
	if _, err := LoadBytes([]byte(at), "at.toml"); err != nil {
		t.Fatalf("LoadBytes of exactly %d bytes: %v", maxFileSize, err)
	}

	overPath := filepath.Join(dir, "over.toml")
	if err := os.WriteFile(overPath, []byte(at+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{overPath}
	if runtime.GOOS != "windows" {
		paths = append(paths, "/dev/zero") // endless: must not be read to the end
	}
	for _, p := range paths {
		start := time.Now()
		_, err := Load(p)
		want := p + ": config file is larger than 256 KiB"
		if err == nil || err.Error() != want {
			t.Errorf("Load(%s) = %v, want %q", p, err, want)
		}
		if es := Errors(err); len(es) != 1 || es[0].File != p {
			t.Errorf("Load(%s): not one *Error naming the file: %#v", p, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Load(%s) took %v", p, d)
		}
	}
	if _, err := LoadBytes([]byte(at+"\n"), "big.toml"); err == nil || err.Error() != "big.toml: config file is larger than 256 KiB" {
		t.Errorf("LoadBytes: %v", err)
	}
}

// nest returns "a = [[...1...]]" with n arrays: level n+1.
func nest(n int) string {
	return "a = " + strings.Repeat("[", n) + "1" + strings.Repeat("]", n) + "\n"
}

func TestNestingLine(t *testing.T) {
	const limit = 8
	for _, tc := range []struct {
		name string
		doc  string
		line int // 0: within the limit
	}{
		{"arrays at the limit", nest(7), 0},
		{"arrays over the limit", nest(8), 1},
		{"inline tables at the limit", "a = {b = {c = {d = 1}}}\nx = {y = [{z = 1}]}", 0},
		{"inline tables over the limit", "\n\na = {b = {c = {d = {e = 1}}}}", 3},
		{"arrays and tables mixed", "a = [{b = [{c = [1]}]}]\na = [{b = [{c = [[1]]}]}]", 2},
		{"dotted keys at the limit", "a.b.c.d.e.f.g.h = 1", 0},
		{"dotted keys over the limit", "a.b.c.d.e.f.g.h.i = 1", 1},
		{"quoted dotted keys", `"a".'b'."c.d"."e[[[[[[[[" = 1`, 0},
		{"header and key at the limit", "[a.b.c.d]\ne.f.g.h = 1", 0},
		{"header and key over the limit", "[a.b.c.d]\n\ne.f.g.h.i = 1", 3},
		{"next header resets the level", "[a.b.c.d]\ne = 1\n[f]\ng.h.i.j.k.l.m = 1", 0},
		{"header over the limit", "x = 1\n[a.b.c.d.e.f.g.h.i]", 2},
		{"array of tables counts its index", "[[a.b.c.d.e.f.g.h]]", 1},
		{"array of tables at the limit", "[[a.b.c.d.e.f.g]]\n[a.b.c.d.e.f.g.h]", 0},
		{"quoted header", `["a]b.c[[[["]` + "\nx = [[[[[1]]]]]", 0},
		{"key in an inline table", "a = {b.c.d.e.f.g.h = 1}", 1},
		{"brackets in strings", `a = ["[[[[[[[[", '{{{{{{{{', "\"[[[[[[[[", '\']` + "\nb = [[[[[[[1]]]]]]]", 0},
		{"brackets in multi-line strings", "a = \"\"\"\n[[[[[[[[\n\\\"\"\"[[[[[[[[\n\"\"\"\nb = '''\n{{{{{{{{\n'''\nc = [[[[[[[1]]]]]]]", 0},
		{"quotes closing multi-line strings", "a = \"\"\"x\"\"\"\"\"\nb = '''y'''''\nc = [[[[[[[[1]]]]]]]]", 3},
		{"brackets in comments", "# [[[[[[[[\na = [ # {{{{{{{{\n1] # ]]]]]]]]]\nb = [[[[[[[1]]]]]]]", 0},
		{"line counts multi-line strings", "a = '''\n\n'''\nb = \"\"\"\\\n\n\"\"\"\nc = [[[[[[[[1]]]]]]]]", 7},
		{"closing brackets do not go below zero", "]]]]]]]]\n" + nest(8), 2},
		{"unterminated string ends at the newline", "a = \"[[[[\n" + nest(8), 2},
		{"arrays over lines", "a = [\n[\n[\n[\n[\n[\n[\n[1]]]]]]]]", 8},
		{"siblings do not add up", "a = [" + strings.Repeat("[[[[[[1]]]]]],", 100) + "]", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nestingLine([]byte(tc.doc), limit); got != tc.line {
				t.Errorf("nestingLine = %d, want %d\n%s", got, tc.line, tc.doc)
			}
		})
	}
}

func TestLoadRefusesDeepNesting(t *testing.T) {
	// At the limit the decoder gets the file (and reports the unknown key).
	_, err := LoadBytes([]byte(nest(maxNesting-1)+fileLease), "deep.toml")
	if es := Errors(err); len(es) != 1 || es[0].Key != "a" || es[0].Msg != "unknown key" {
		t.Errorf("at the limit: %v", err)
	}
	_, err = LoadBytes([]byte("# deep\n\n\n"+nest(maxNesting)+fileLease), "deep.toml")
	want := "deep.toml:4: nesting deeper than 32 levels (table and dotted-key parts, arrays, inline tables)"
	if err == nil || err.Error() != want {
		t.Errorf("over the limit: %v, want %q", err, want)
	}
	checkErrorTree(t, errors.Join(err, err))
}

// TestDeepNestingIsCheap is the adversarial file that took 2.4 GB in the
// decoder (80 KB of nested arrays; 400 KB ran out of memory), and its
// variants: now refused before decoding, in linear time.
func TestDeepNestingIsCheap(t *testing.T) {
	const n = 40000
	for name, doc := range map[string]string{
		"arrays":        "a = " + strings.Repeat("[", n) + strings.Repeat("]", n),
		"inline tables": "a = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n),
		"dotted key":    strings.Repeat("a.", n) + "a = 1",
		"header":        "[" + strings.Repeat("a.", n) + "a]",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := LoadBytes([]byte(doc), "deep.toml")
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		if es := Errors(err); len(es) != 1 || !strings.HasPrefix(es[0].Msg, "nesting deeper than") {
			t.Errorf("%s: %v", name, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: allocated %d MiB", name, alloc>>20)
		}
		if d > time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
}

func TestRealConfigsNestLittle(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.toml")
	files = append(files, "../baton.example.toml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if line := nestingLine(data, 8); line != 0 {
			t.Errorf("%s:%d: nests deeper than 8 levels", f, line)
		}
	}
}

// FuzzNestingLine checks that the pre-scan never panics, that the line it
// reports is in the document, and that it never sees less nesting than
// the decoder builds: a document it passes at some limit decodes to a tree
// no deeper than that (see treeDepth).
func FuzzNestingLine(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.toml")
	files = append(files, "../baton.example.toml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		nest(3), "a = {b = [{c.d = 1}]}", "[[a.b]]\nc.d = [[1]]",
		"\"a[\".'b{' = \"\"\"[[\n\"\"\"", "a = '''x'''''\nb = [[1]]",
		"a = [ # [\n[1]]", "x = \"\\\"[\" \n[[y]]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		level := 0
		for nestingLine(data, level) != 0 {
			level++
			if level > 64 {
				return // too deep for the decoder here
			}
		}
		if line := nestingLine(data, level-1); level > 0 && (line < 1 || line > strings.Count(string(data), "\n")+1) {
			t.Fatalf("line %d out of range", line)
		}
		var v map[string]any
		md, err := toml.Decode(string(data), &v)
		if err != nil {
			return
		}
		if d := treeDepth(v); d > level {
			t.Fatalf("decoded depth %d, pre-scan saw %d:\n%s", d, level, data)
		}
		for _, k := range md.Keys() {
			if len(k) > level {
				t.Fatalf("decoder's key %s has %d parts, pre-scan saw %d:\n%s", k, len(k), level, data)
			}
		}
	})
}

// treeDepth is the nesting of a decoded document as the pre-scan counts it:
// each key is one level below its parent, and so is each element of an
// array, except an array of tables (the decoder's key for [[a.b]] is a.b,
// whether a is an array of tables or not; the indexes at most double the
// depth of the tree).
func treeDepth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, 1+treeDepth(e))
		}
	case []map[string]any:
		for _, e := range v {
			d = max(d, treeDepth(e))
		}
	case []any:
		for _, e := range v {
			d = max(d, 1+treeDepth(e))
		}
	}
	return d
}

// TestLargeCertificateFiles: the key pair is read at load (and reload)
// with the proxy's bound, so an endless or huge file is an error, not an
// out-of-memory crash.
func TestLargeCertificateFiles(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, make([]byte, fsutil.MaxPEMFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []string{big}
	if runtime.GOOS != "windows" {
		files = append(files, "/dev/zero")
	}
	for _, f := range files {
		for _, key := range []string{"cert_file", "key_file"} {
			cert, keyFile, line := "testdata/files/test.crt", "testdata/files/test.key", "6"
			if key == "cert_file" {
				cert = f
			} else {
				keyFile, line = f, "7"
			}
			doc := fileLease + "[listen]\nhttps = \":8443\"\n[[tls.certificate]]\n" +
				"cert_file = " + strconv.Quote(cert) + "\nkey_file = " + strconv.Quote(keyFile) + "\n"
			_, err := load(t, doc)
			want := "test.toml:" + line + ": tls.certificate[0]." + key + ": file " + strconv.Quote(f) + " is larger than 1 MiB"
			if err == nil || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		}
	}
}

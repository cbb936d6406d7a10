package engine

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// dockerignoreName is the file in the context root whose patterns exclude
// files from the build context, as `docker build` reads it.
const dockerignoreName = ".dockerignore"

// dockerfilePath validates dockerfile, a path relative to contextDir, and
// returns it cleaned and slash-separated as the daemon expects it. An empty
// dockerfile means "Dockerfile". A path that leaves contextDir, directly or
// through a symbolic link, is an error because the daemon reads only the
// files inside the context.
func dockerfilePath(contextDir, dockerfile string) (string, error) {
	info, err := os.Stat(contextDir)
	if err != nil {
		return "", fmt.Errorf("reading build context directory: %w", err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("build context %q is not a directory", contextDir)
	}

	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if !filepath.IsLocal(dockerfile) {
		return "", fmt.Errorf("dockerfile %q escapes the build context %q: "+
			"give a path inside the context directory", dockerfile, contextDir)
	}

	resolvedContext, err := filepath.EvalSymlinks(contextDir)
	if err != nil {
		return "", fmt.Errorf("resolving build context directory %q: %w", contextDir, err)
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(contextDir, dockerfile))
	if err != nil {
		return "", fmt.Errorf("reading dockerfile %q in build context %q: %w",
			dockerfile, contextDir, err)
	}
	rel, err := filepath.Rel(resolvedContext, resolved)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("dockerfile %q links to %q outside the build context %q: "+
			"give a path inside the context directory", dockerfile, resolved, contextDir)
	}
	return filepath.ToSlash(filepath.Clean(dockerfile)), nil
}

// contextWriter writes a build context directory as a tar stream, leaving
// out the paths that the context's .dockerignore excludes.
type contextWriter struct {
	root       string
	dockerfile string // slash-separated, relative to root
	matcher    *patternmatcher.PatternMatcher
	parents    map[string]patternmatcher.MatchInfo // by slash-separated directory
	tw         *tar.Writer
}

// writeContext writes the build context in dir to w as a tar stream, one
// file at a time, so the context is never held in memory. The Dockerfile and
// .dockerignore are always sent, even when .dockerignore excludes them,
// because the daemon reads both. `docker build` does the same.
func writeContext(w io.Writer, dir, dockerfile string) error {
	patterns, err := readDockerignore(dir)
	if err != nil {
		return err
	}
	matcher, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("parsing %s in %q: %w", dockerignoreName, dir, err)
	}

	cw := &contextWriter{
		root:       dir,
		dockerfile: dockerfile,
		matcher:    matcher,
		parents:    make(map[string]patternmatcher.MatchInfo),
		tw:         tar.NewWriter(w),
	}
	if err := filepath.WalkDir(dir, cw.visit); err != nil {
		return err
	}
	if err := cw.tw.Close(); err != nil {
		return fmt.Errorf("finishing build context tar stream: %w", err)
	}
	return nil
}

func readDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, dockerignoreName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dockerignoreName, err)
	}
	defer f.Close()

	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s in %q: %w", dockerignoreName, dir, err)
	}
	return patterns, nil
}

func (cw *contextWriter) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return fmt.Errorf("reading build context: %w", err)
	}
	rel, err := filepath.Rel(cw.root, p)
	if err != nil {
		return fmt.Errorf("reading build context: %w", err)
	}
	if rel == "." {
		return nil
	}
	rel = filepath.ToSlash(rel)

	excluded, err := cw.excluded(rel, d.IsDir())
	if err != nil {
		return err
	}
	if excluded {
		if d.IsDir() && !cw.mayReinclude(rel) {
			return filepath.SkipDir
		}
		// The directory entry itself is left out, but files below it may be
		// re-included by a "!" pattern. The daemon creates their parents.
		return nil
	}
	return cw.add(p, rel, d)
}

// excluded reports whether .dockerignore excludes rel.
func (cw *contextWriter) excluded(rel string, isDir bool) (bool, error) {
	parent := path.Dir(rel)
	matched, info, err := cw.matcher.MatchesUsingParentResults(rel, cw.parents[parent])
	if err != nil {
		return false, fmt.Errorf("matching %q against %s: %w", rel, dockerignoreName, err)
	}
	if isDir {
		cw.parents[rel] = info
	}
	if rel == cw.dockerfile || rel == dockerignoreName {
		return false, nil
	}
	return matched, nil
}

// mayReinclude reports whether an exclusion ("!") pattern could match a
// path below the excluded directory dir, or whether dir contains the
// Dockerfile. It errs towards true, which only costs walking the directory.
func (cw *contextWriter) mayReinclude(dir string) bool {
	if strings.HasPrefix(cw.dockerfile, dir+"/") {
		return true
	}
	if !cw.matcher.Exclusions() {
		return false
	}
	dirParts := strings.Split(dir, "/")
	for _, pattern := range cw.matcher.Patterns() {
		if !pattern.Exclusion() {
			continue
		}
		if patternPrefixMatches(strings.Split(filepath.ToSlash(pattern.String()), "/"), dirParts) {
			return true
		}
	}
	return false
}

// patternPrefixMatches reports whether the leading components of a pattern
// can match the directory components dirParts, so the pattern may match a
// path below that directory.
func patternPrefixMatches(patternParts, dirParts []string) bool {
	for i, part := range patternParts {
		if strings.Contains(part, "**") {
			return true
		}
		if i >= len(dirParts) {
			return true
		}
		ok, err := path.Match(part, dirParts[i])
		if err != nil || !ok {
			return err != nil
		}
	}
	// The pattern names dir itself or one of its parents, which a
	// re-included parent applies to everything below.
	return true
}

// add writes one file, directory or symbolic link to the tar stream.
// Sockets are skipped because tar cannot represent them.
func (cw *contextWriter) add(p, rel string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return fmt.Errorf("reading build context file %q: %w", rel, err)
	}
	if info.Mode()&fs.ModeSocket != 0 {
		return nil
	}

	var link string
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return fmt.Errorf("reading symbolic link %q in build context: %w", rel, err)
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return fmt.Errorf("describing build context file %q: %w", rel, err)
	}
	hdr.Name = rel
	if info.IsDir() {
		hdr.Name += "/"
	}
	// COPY and ADD give files to root unless --chown is set, so the owner on
	// this machine only makes the context differ between machines.
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""

	if err := cw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing build context file %q: %w", rel, err)
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	return cw.copyFile(p, rel)
}

func (cw *contextWriter) copyFile(p, rel string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("opening build context file %q: %w", rel, err)
	}
	defer f.Close()
	if _, err := io.Copy(cw.tw, f); err != nil {
		return fmt.Errorf("writing build context file %q: %w", rel, err)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/quai-ci/quai/pipeline"
)

// reloadDelay gathers the burst of events an editor or `git pull` makes
// into one reload.
const reloadDelay = 200 * time.Millisecond

// pipelineSet holds the pipelines in use. A reload swaps the whole set;
// runs keep the definition they started with, since Pipeline values are
// never changed.
type pipelineSet struct {
	dir     string
	log     *slog.Logger
	current atomic.Pointer[[]*pipeline.Pipeline]
	// onChange is called with each new valid set, after the swap.
	onChange func([]*pipeline.Pipeline)
}

func newPipelineSet(dir string, initial []*pipeline.Pipeline, log *slog.Logger) *pipelineSet {
	s := &pipelineSet{dir: dir, log: log}
	s.current.Store(&initial)
	return s
}

// Get returns the pipelines in use now.
func (s *pipelineSet) Get() []*pipeline.Pipeline {
	return *s.current.Load()
}

// Reload loads the folder again. A folder with errors keeps the last valid
// set in use and logs every error.
func (s *pipelineSet) Reload() error {
	pipelines, problems, err := pipeline.LoadDir(s.dir)
	if err != nil {
		s.log.Error("reloading pipelines failed; keeping the ones loaded", "dir", s.dir, "error", err)
		return err
	}
	for _, p := range problems {
		if p.Warning {
			s.log.Warn("pipeline warning", "problem", p.String())
		} else {
			s.log.Error("pipeline error", "problem", p.String())
		}
	}
	if pipeline.HasErrors(problems) {
		err := fmt.Errorf("reloading pipelines from %s: the files have errors; keeping the %d pipelines loaded", s.dir, len(s.Get()))
		s.log.Error("reloading pipelines failed; keeping the ones loaded", "dir", s.dir, "error", err)
		return err
	}
	s.current.Store(&pipelines)
	s.log.Info("pipelines reloaded", "dir", s.dir, "pipelines", pipelineNames(pipelines))
	if s.onChange != nil {
		s.onChange(pipelines)
	}
	return nil
}

// Watch reloads on SIGHUP and when a file in the folder changes, until ctx
// ends. A folder that cannot be watched leaves SIGHUP working.
func (s *pipelineSet) Watch(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		defer w.Close()
		err = w.Add(s.dir)
	}
	if err != nil {
		s.log.Warn("watching the pipeline folder failed; send SIGHUP to reload", "dir", s.dir, "error", err)
	} else {
		events, errs = w.Events, w.Errors
	}

	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			s.log.Info("SIGHUP received; reloading pipelines")
			_ = s.Reload()
		case ev := <-events:
			if isPipelineFile(ev.Name) {
				timer = time.After(reloadDelay)
			}
		case err := <-errs:
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				s.log.Warn("watching the pipeline folder", "dir", s.dir, "error", err)
			}
			timer = time.After(reloadDelay)
		case <-timer:
			timer = nil
			_ = s.Reload()
		}
	}
}

func isPipelineFile(name string) bool {
	ext := filepath.Ext(name)
	return ext == ".yml" || ext == ".yaml"
}

func pipelineNames(pipelines []*pipeline.Pipeline) string {
	names := make([]string, len(pipelines))
	for i, p := range pipelines {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

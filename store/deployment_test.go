package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestSaveDeployment(t *testing.T) {
	s, _ := openTestStore(t)
	created := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name    string
		dep     Deployment
		wantID  uint64
		wantErr bool
	}{
		{name: "first", dep: Deployment{Pipeline: "web", RunID: 3, Container: "web-3"}, wantID: 1},
		{name: "keeps CreatedAt", dep: Deployment{Pipeline: "api", CreatedAt: created}, wantID: 2},
		{name: "empty pipeline", dep: Deployment{RunID: 4}, wantErr: true},
		{name: "after error", dep: Deployment{Pipeline: "web", Replaced: "web-3"}, wantID: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dep
			err := s.SaveDeployment(&d)
			if tt.wantErr {
				if err == nil {
					t.Fatal("SaveDeployment succeeded, want an error")
				}
				if !reflect.DeepEqual(d, tt.dep) {
					t.Errorf("failed SaveDeployment changed the deployment to %+v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.ID != tt.wantID {
				t.Errorf("ID = %d, want %d", d.ID, tt.wantID)
			}
			if d.CreatedAt.IsZero() {
				t.Error("CreatedAt was not set")
			}
			if !tt.dep.CreatedAt.IsZero() && !d.CreatedAt.Equal(tt.dep.CreatedAt) {
				t.Errorf("CreatedAt = %v, want %v", d.CreatedAt, tt.dep.CreatedAt)
			}

			current, err := s.CurrentDeployment(d.Pipeline)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(current, d) {
				t.Errorf("CurrentDeployment(%q) = %+v, want %+v", d.Pipeline, current, d)
			}
		})
	}
}

func TestDeployments(t *testing.T) {
	s, _ := openTestStore(t)
	// Deployments 1..5 go to web, api, web, web, api.
	for _, pipeline := range []string{"web", "api", "web", "web", "api"} {
		if err := s.SaveDeployment(&Deployment{Pipeline: pipeline}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		pipeline string
		limit    int
		want     []uint64
	}{
		{"web", 10, []uint64{4, 3, 1}},
		{"web", 2, []uint64{4, 3}},
		{"api", 1, []uint64{5}},
		{"api", 10, []uint64{5, 2}},
		{"never", 10, nil},
		{"", 10, nil},
	}
	for _, tt := range tests {
		got, err := s.Deployments(tt.pipeline, tt.limit)
		if err != nil {
			t.Fatalf("Deployments(%q, %d): %v", tt.pipeline, tt.limit, err)
		}
		var ids []uint64
		for _, d := range got {
			ids = append(ids, d.ID)
			if d.Pipeline != tt.pipeline {
				t.Errorf("Deployments(%q) returned deployment %d of %q", tt.pipeline, d.ID, d.Pipeline)
			}
		}
		if !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("Deployments(%q, %d) = %v, want %v", tt.pipeline, tt.limit, ids, tt.want)
		}
	}
}

func TestCurrentDeployment(t *testing.T) {
	s, _ := openTestStore(t)
	for _, d := range []Deployment{{Pipeline: "web", Image: "web:1"}, {Pipeline: "web", Image: "web:2"}} {
		if err := s.SaveDeployment(&d); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		pipeline  string
		wantImage string
		wantErr   error
	}{
		{pipeline: "web", wantImage: "web:2"},
		{pipeline: "api", wantErr: ErrDeploymentNotFound},
		{pipeline: "", wantErr: ErrDeploymentNotFound},
	}
	for _, tt := range tests {
		got, err := s.CurrentDeployment(tt.pipeline)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("CurrentDeployment(%q) error = %v, want %v", tt.pipeline, err, tt.wantErr)
			continue
		}
		if got.Image != tt.wantImage {
			t.Errorf("CurrentDeployment(%q).Image = %q, want %q", tt.pipeline, got.Image, tt.wantImage)
		}
	}
}

package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

var errTest = errors.New("test error")

func TestSaveDelivery(t *testing.T) {
	s, _ := openTestStore(t)
	received := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := s.SaveDelivery(Delivery{ID: "first", Event: "push", ReceivedAt: received}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		d       Delivery
		wantErr error
		anyErr  bool
	}{
		{name: "new", d: Delivery{ID: "second", Event: "push", Repo: "acme/web", RunIDs: []uint64{4, 5}}},
		{name: "redelivery", d: Delivery{ID: "first", Event: "ping"}, wantErr: ErrDeliveryExists},
		{name: "empty ID", d: Delivery{Event: "push"}, anyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SaveDelivery(tt.d)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("SaveDelivery error = %v, want %v", err, tt.wantErr)
			case tt.anyErr && err == nil:
				t.Fatal("SaveDelivery succeeded, want an error")
			case tt.wantErr == nil && !tt.anyErr && err != nil:
				t.Fatalf("SaveDelivery: %v", err)
			}
		})
	}

	first, err := s.Delivery("first")
	if err != nil {
		t.Fatal(err)
	}
	if first.Event != "push" {
		t.Errorf("redelivery overwrote the event: %q", first.Event)
	}
	if !first.ReceivedAt.Equal(received) {
		t.Errorf("ReceivedAt = %v, want %v", first.ReceivedAt, received)
	}

	second, err := s.Delivery("second")
	if err != nil {
		t.Fatal(err)
	}
	if second.ReceivedAt.IsZero() {
		t.Error("zero ReceivedAt was not set")
	}
	if !reflect.DeepEqual(second.RunIDs, []uint64{4, 5}) || second.Repo != "acme/web" {
		t.Errorf("Delivery(second) = %+v", second)
	}
}

func TestDeliveryNotFound(t *testing.T) {
	s, _ := openTestStore(t)
	for _, id := range []string{"missing", ""} {
		if _, err := s.Delivery(id); !errors.Is(err, ErrDeliveryNotFound) {
			t.Errorf("Delivery(%q) error = %v, want ErrDeliveryNotFound", id, err)
		}
	}
}

func TestUpdateDelivery(t *testing.T) {
	tests := []struct {
		name       string
		id         string
		fn         func(*Delivery) error
		wantErr    error
		anyErr     bool
		wantResult string
	}{
		{
			name:       "sets result",
			id:         "d",
			fn:         func(d *Delivery) error { d.Result = "runs 1"; return nil },
			wantResult: "runs 1",
		},
		{
			name:    "unknown ID",
			id:      "other",
			fn:      func(d *Delivery) error { return nil },
			wantErr: ErrDeliveryNotFound,
		},
		{
			name:       "fn error aborts",
			id:         "d",
			fn:         func(d *Delivery) error { d.Result = "lost"; return errTest },
			wantErr:    errTest,
			wantResult: "received",
		},
		{
			name:       "ID change rejected",
			id:         "d",
			fn:         func(d *Delivery) error { d.ID = "e"; return nil },
			anyErr:     true,
			wantResult: "received",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			if err := s.SaveDelivery(Delivery{ID: "d", Result: "received"}); err != nil {
				t.Fatal(err)
			}

			err := s.UpdateDelivery(tt.id, tt.fn)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("UpdateDelivery error = %v, want %v", err, tt.wantErr)
			case tt.anyErr && err == nil:
				t.Fatal("UpdateDelivery succeeded, want an error")
			case tt.wantErr == nil && !tt.anyErr && err != nil:
				t.Fatalf("UpdateDelivery: %v", err)
			}

			if tt.wantResult == "" {
				return
			}
			got, err := s.Delivery("d")
			if err != nil {
				t.Fatal(err)
			}
			if got.Result != tt.wantResult {
				t.Errorf("stored Result = %q, want %q", got.Result, tt.wantResult)
			}
		})
	}
}

func TestListDeliveries(t *testing.T) {
	s, _ := openTestStore(t)
	if got, err := s.ListDeliveries(10); err != nil || len(got) != 0 {
		t.Fatalf("ListDeliveries on an empty store = %v, %v", got, err)
	}

	// ReceivedAt runs backwards to show that the order is the save order.
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c", "d"} {
		d := Delivery{ID: id, ReceivedAt: base.Add(-time.Duration(i) * time.Hour)}
		if err := s.SaveDelivery(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveDelivery(Delivery{ID: "b"}); !errors.Is(err, ErrDeliveryExists) {
		t.Fatalf("redelivery of b: %v", err)
	}

	tests := []struct {
		limit int
		want  []string
	}{
		{limit: 1, want: []string{"d"}},
		{limit: 3, want: []string{"d", "c", "b"}},
		{limit: 4, want: []string{"d", "c", "b", "a"}},
		{limit: 100, want: []string{"d", "c", "b", "a"}},
	}
	for _, tt := range tests {
		got, err := s.ListDeliveries(tt.limit)
		if err != nil {
			t.Fatalf("ListDeliveries(%d): %v", tt.limit, err)
		}
		var ids []string
		for _, d := range got {
			ids = append(ids, d.ID)
		}
		if !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("ListDeliveries(%d) = %v, want %v", tt.limit, ids, tt.want)
		}
	}
}

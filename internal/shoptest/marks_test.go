package shoptest

import (
	"fmt"
	"runtime"
	"testing"
)

// markedTest is the testing.TB a mark sees: it records a failure or a skip and
// ends the goroutine, as testing.T does.
type markedTest struct {
	testing.TB
	name            string
	failed, skipped string
}

func (m *markedTest) Name() string { return m.name }
func (m *markedTest) Helper()      {}
func (m *markedTest) Fatalf(format string, args ...any) {
	m.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (m *markedTest) Skip(args ...any) {
	m.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

// mark runs a mark on a test of that name in a goroutine of its own.
func mark(name string, mark func(testing.TB)) *markedTest {
	m := &markedTest{name: name}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mark(m)
	}()
	<-done
	return m
}

func TestMarksEnforceTheNamesMakeTestSelects(t *testing.T) {
	for _, tc := range []struct {
		mark     string
		f        func(testing.TB)
		name     string
		wantFail bool
	}{
		{"MultiMember", MultiMember, "TestClusterGrains", false},
		{"MultiMember", MultiMember, "TestClusterGrains/reservation_expires", false},
		{"MultiMember", MultiMember, "TestGrains", true},
		{"MultiMember", MultiMember, "TestGrains/TestClusterGrains", true},
		{"MultiMember", MultiMember, "TestShippedBurst", true},
		{"ShippedCost", ShippedCost, "TestShippedBurst", false},
		{"ShippedCost", ShippedCost, "TestShippedBurst/logins", false},
		{"ShippedCost", ShippedCost, "TestBurst", true},
		{"ShippedCost", ShippedCost, "TestClusterFlashSale", true},
	} {
		m := mark(tc.name, tc.f)
		if failed := m.failed != ""; failed != tc.wantFail {
			t.Errorf("%s on %s: failed %v (%q), want failed %v", tc.mark, tc.name, failed, m.failed, tc.wantFail)
			continue
		}
		if tc.wantFail {
			continue
		}
		if skipped := m.skipped != ""; skipped != raceEnabled {
			t.Errorf("%s on %s: skipped %v with the race detector on %v", tc.mark, tc.name, skipped, raceEnabled)
		}
	}
}

package sqlite

import (
	"fmt"
	"os"
	"sort"
	"sync"
)

var tmpCounts = struct {
	sync.Mutex
	rows, stmts map[string]int
	batches     int
}{rows: map[string]int{}, stmts: map[string]int{}}

func tmpCount(name string, rows int) {
	tmpCounts.Lock()
	tmpCounts.rows[name] += rows
	tmpCounts.stmts[name]++
	tmpCounts.Unlock()
}

func tmpFlush() {
	tmpCounts.Lock()
	defer tmpCounts.Unlock()
	tmpCounts.batches++
	var keys []string
	for k := range tmpCounts.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f, err := os.Create(fmt.Sprintf("/work/tmp-sqlwrite/counts-%d.txt", os.Getpid()))
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "batches %d\n", tmpCounts.batches)
	for _, k := range keys {
		fmt.Fprintf(f, "%8d rows %6d stmts  %s\n", tmpCounts.rows[k], tmpCounts.stmts[k], k)
	}
}

package sqlite

// SetBeforeWrite makes f run as each plan's write begins (pipeline.go), for
// tests that order an update's plan against another's write.
func (s *Store) SetBeforeWrite(f func()) { s.beforeWrite = f }

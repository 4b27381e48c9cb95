package sqlite

// SetBeforeWrite makes f run as each plan's write begins
// (pipeline.go), for tests that order an update's plan against another's
// write; an error from f fails the write.
func (s *Store) SetBeforeWrite(f func() error) { s.beforeWrite = f }

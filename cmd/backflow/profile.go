package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// envCPUProfile names a file that receives a CPU profile of the whole
// command (go tool pprof reads it): how the benchmark tells where a dump's
// or a restore's CPU goes, on the real binary and the real pipeline.
const envCPUProfile = "BACKFLOW_CPU_PROFILE"

// startCPUProfile starts the profile when envCPUProfile is set; the function
// it returns stops it and writes the file.
func startCPUProfile() (stop func(), err error) {
	path := os.Getenv(envCPUProfile)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

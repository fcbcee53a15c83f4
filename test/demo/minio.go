package main

import "github.com/minio/minio-go/v7"

func minioListOptions() minio.ListObjectsOptions {
	return minio.ListObjectsOptions{Recursive: true}
}

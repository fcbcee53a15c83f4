package controller

// CacheOptions exposes cacheOptions to the tests of the manager's cache.
var CacheOptions = cacheOptions

"""Throwaway real servers for the tests and the benchmarks.

A private redis-server on a free port (redis_server), an aiosmtpd sink that notes
what arrives (smtp_sink) and its fault-injecting kin (faulty_smtp_sink), real worker
processes (worker_processes), the one way submissions go in (submissions), and
waiting on a condition rather than a guessed sleep (polling). Tests and benchmarks
start the same things the same way, so a benchmark measures what the tests check,
and a fix to how a server starts or stops is made once.
"""

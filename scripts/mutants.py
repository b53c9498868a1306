"""ncfd's hand mutations: each a small change to one named function that breaks one behaviour the
test suite is meant to hold, and the tests meant to catch it. scripts/mutants applies them one at a
time to a scratch copy and runs those tests: every mutant must be caught (the tests fail).

A mutant whose old text is no longer in its function (the code moved, was renamed or redesigned)
is reported as an error: update the entry with the code, or drop it with the behaviour.

The entries marked "pending" wait for tests being written alongside (issue 18): until those land,
"survived" is the expected verdict for them.

Left out, as no test can tell them from the code: the principal for -v asked without -v (it and
the first leg wait on the same KDC, and fail with the same line); gsettings given its full 2 s past
a shorter deadline (the same message, a second later); the dead-proxy file rewritten after each
route (32 at most: only slower).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str  # unique; -k selects by it
    file: str  # from the checkout's root
    function: str  # a function, Class.method, outer.inner, or a module-level table's name
    old: str  # exact text, found once in the function
    new: str
    breaks: str  # the behaviour lost, in a line
    tests: str  # pytest arguments: node ids, files, -k expressions (shell-quoted)


M = Mutant
HANDSHAKES = "tests/test_handshakes.py"
HOSTILE = "tests/test_hostile.py::test_hostile_proxy"
RELAY_MODES = "tests/test_relay_modes.py"

MUTANTS = [
    # --- not a byte past the proxy's reply ------------------------------------------------------
    M("header-block-consumes-the-peek", "ncfd/tunnel.py", "read_header_block",
      "_consume(sock, block.take(peeked))", "block.take(peeked)\n            _consume(sock, len(peeked))",
      "reads everything peeked, the target's banner with the reply",
      f"{HANDSHAKES}::test_connect_reply_and_banner_in_one_segment"),
    M("header-block-takes-all", "ncfd/http_connect.py", "HeaderBlock.take",
      "count = len(peeked) if match is None else match.end() - len(self.data)", "count = len(peeked)",
      "takes what follows the blank line into the header block",
      "tests/test_http_connect.py::test_header_block_takes_exactly_up_to_the_blank_line"),
    M("header-block-misses-a-split-end", "ncfd/http_connect.py", "HeaderBlock.take",
      "max(0, len(self.data) - 2)", "len(self.data)",
      "a blank line split between two reads is not seen",
      "tests/test_fuzz.py::test_valid_reply_split_anywhere_consumes_exactly_the_reply"),
    M("tls-header-read-in-blocks", "ncfd/tunnel.py", "read_header_block",
      "byte = sock.recv(1)", "byte = sock.recv(4096)",
      "through an HTTPS proxy (no peek), reads past the reply",
      "tests/test_tls_relay.py::test_the_banner_glued_to_the_reply_in_one_tls_record_stays_for_ssh"),
    # --- the relay ------------------------------------------------------------------------------
    M("relay-short-write-lost", "ncfd/relay.py", "Pump._give",
      "self.held = self.held[os.write(self.dst, self.held) :]",
      "os.write(self.dst, self.held)\n                    self.held = self.held[len(self.held) :]",
      "a short write to a full network drops the rest",
      f"{RELAY_MODES}::test_upload_through_pipes_with_N"),
    M("relay-short-splice-lost", "ncfd/relay.py", "Pump._give",
      "self.in_pipe -= os.splice(self.pipe[0], self.dst, self.in_pipe)",
      "os.splice(self.pipe[0], self.dst, self.in_pipe)\n                    self.in_pipe = 0",
      "a short splice out of the relay's pipe drops the rest",
      f"{RELAY_MODES}::test_a_full_network_stalls_only_its_own_direction"),
    M("relay-refused-splice-drops-the-pipe", "ncfd/relay.py", "Pump._give",
      "self._become_copy(held)", 'self._become_copy(b"")',
      "what the pipe held when dst refused splice is lost",
      f"{RELAY_MODES}::test_a_destination_refusing_splice_midway_loses_nothing"),
    M("relay-splices-into-append", "ncfd/relay.py", "pump",
      "(stat.S_ISREG(mode) and not _appending(dst))", "stat.S_ISREG(mode)",
      "tries splice into a file opened for append, which refuses it",
      f"{RELAY_MODES}::test_the_cheapest_pump_is_chosen"),
    M("relay-no-half-close", "ncfd/relay.py", "_run",
      "sock.shutdown(socket.SHUT_WR)", "pass",
      "-N: stdin's EOF is not passed on to the network",
      "tests/test_relay.py::test_relay_direct_with_N_ends_when_the_server_closes"),
    # Issue 17: the network's EOF ends only the way to stdout.
    M("relay-network-eof-ends-stdin", "ncfd/relay.py", "_run",
      "                _close_stdout()\n", "                _close_stdout()\n                return\n",
      "the server's half-close cuts stdin short",
      "tests/test_relay.py::test_a_half_close_from_the_server_leaves_stdin_flowing_to_its_end"),
    M("relay-network-eof-kept-from-stdout", "ncfd/relay.py", "_run",
      "                _close_stdout()\n", "                pass\n",
      "stdout sees no EOF until stdin ends",
      "tests/test_relay.py::test_the_network_eof_reaches_stdout_at_once_and_stdin_ends_the_relay"),
    M("relay-closed-before-stdin-is-quiet", "ncfd/relay.py", "_run",
      'raise OSError(errno.EPIPE, "the connection was closed before all of stdin was sent") from None', "return",
      "stdin that could not be delivered (closed) exits 0",
      "tests/test_relay.py::test_a_server_that_closes_before_stdin_is_sent_fails_the_relay"),
    M("relay-reset-before-stdin-is-quiet", "ncfd/relay.py", "_run",
      'raise OSError(errno.ECONNRESET, "the connection was reset before the end of stdin") from None', "return",
      "stdin that could not be delivered (reset) exits 0",
      "tests/test_relay.py::test_a_reset_before_the_end_of_stdin_fails_the_relay"),
    M("relay-reset-drops-queued-data", "ncfd/relay.py", "_run",
      "        if down is not None and _ready(down, ready):\n",
      "        if down is not None and ready.get(sock.fileno(), 0) & (select.POLLERR | select.POLLHUP):\n"
      "            return\n        if down is not None and _ready(down, ready):\n",
      "ends at the reset without reading what came before it",
      f"{RELAY_MODES}::test_a_reset_after_data_ends_the_relay_with_the_data_out"),
    M("relay-no-quit-timer", "ncfd/relay.py", "_run",
      "quit_at = time.monotonic() + quit_after", "pass",
      "-q: the quit timer never starts",
      f"{RELAY_MODES}::test_idle_timeout_and_q_still_end_the_relay"),
    M("relay-no-idle-timeout", "ncfd/relay.py", "_run",
      "for w in (idle_timeout, None if", "for w in (None, None if",
      "-w: a silent connection is never given up",
      f"{RELAY_MODES}::test_idle_timeout_and_q_still_end_the_relay"),
    M("relay-stdout-gone-is-an-error", "ncfd/relay.py", "_run",
      "except BrokenPipeError:  # stdout went away\n                return",
      "except BrokenPipeError:  # stdout went away\n                raise",
      "stdout going away is an error, not a quiet end",
      f"{RELAY_MODES}::test_stdout_going_away_ends_the_relay_quietly"),
    M("relay-enlarges-non-pipes", "ncfd/relay.py", "enlarge_pipe",
      " or not stat.S_ISFIFO(os.fstat(fd).st_mode)", "",
      "pipe fcntls on files, sockets and ttys",
      f"{RELAY_MODES}::test_pipes_are_enlarged_and_other_descriptors_left_alone"),
    M("relay-shrinks-large-pipes", "ncfd/relay.py", "enlarge_pipe",
      "if fcntl.fcntl(fd, get) < PIPE_SIZE:", "if True:",
      "a pipe larger than PIPE_SIZE is shrunk",
      f"{RELAY_MODES}::test_pipes_are_enlarged_and_other_descriptors_left_alone"),
    # --- secrets --------------------------------------------------------------------------------
    M("url-password-shown", "ncfd/proxies.py", "_redacted",
      "return f\"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}\"", "return value",
      "a proxy URL's password appears in messages",
      "tests/test_proxy_urls.py::test_url_usage_errors"),
    # --- deadlines ------------------------------------------------------------------------------
    M("deadline-never-passes", "ncfd/deadline.py", "Deadline.remaining",
      "if left <= 0 or self._cancel.cancelled:", "if self._cancel.cancelled:",
      "remaining() goes negative instead of raising TimedOut",
      "tests/test_pac.py::test_the_deadline_passing_between_routes_says_how_far_the_routes_got"),
    # Also the hang guard: the test's call runs in a thread joined with a bound.
    M("deadline-not-armed", "ncfd/deadline.py", "Deadline.arm",
      "sock.settimeout(self.remaining())", "sock.settimeout(None)",
      "a socket read waits for ever: a drip-feeding proxy outlasts the deadline",
      "tests/test_api.py::test_a_drip_fed_reply_is_cut_at_the_deadline"),
    M("deadline-share-takes-all", "ncfd/deadline.py", "Deadline.share",
      "self.remaining() / max(entries, 1)", "self.remaining()",
      "the first of several routes takes the whole deadline",
      "tests/test_pac.py::test_an_unanswering_proxy_gets_its_share_of_the_deadline_then_the_next_is_tried"),
    M("deadline-bounded-waits-for-ever", "ncfd/deadline.py", "bounded",
      "done.acquire(timeout=deadline.remaining())", "done.acquire()",
      "a helper thread (a KDC, getaddrinfo) is waited for past the deadline",
      "tests/test_kerberos.py::test_a_kdc_that_does_not_answer_is_bounded_by_w"),
    M("deadline-cancel-leaves-sockets", "ncfd/deadline.py", "Deadline.cancel",
      "        for sock in list(self._cancel.sockets):\n            _shut(sock)\n", "",
      "cancelling connect_async leaves the attempt waiting on its socket",
      "tests/test_api.py::test_cancelling_connect_async_stops_the_attempt_and_frees_the_loop"),
    M("cancelled-handshake-socket-leaks", "ncfd/tunnel.py", "HttpTunnel.open",
      "            if sock is not None:\n                sock.close()", "            pass",
      "the socket of a handshake cut short (connect_async cancelled) is left to the garbage collector",
      "tests/test_api.py::test_a_cancelled_call_that_would_have_succeeded_leaks_no_socket"),
    M("thread-stack-size-kept", "ncfd/deadline.py", "start_thread",
      "_thread.stack_size(previous)", "pass",
      "the PAC's 8 MiB stack size stays set for the application's threads",
      "tests/test_api.py::test_each_helper_thread_gets_its_own_stack_size_whatever_runs_alongside"),
    # --- exit statuses --------------------------------------------------------------------------
    M("exit-usage", "ncfd/errors.py", "UsageError", "exit_code = 2", "exit_code = 1",
      "a usage error exits 1, not 2",
      "tests/test_options.py::test_usage_error_is_one_line_exit_2_no_traceback"),
    M("exit-resolve", "ncfd/errors.py", "ResolveError", "exit_code = 3", "exit_code = 1",
      "a name that does not resolve exits 1, not 3",
      "tests/test_first_contact.py::test_a_name_that_does_not_resolve_because_of_n_4_or_6_says_so"),
    M("exit-connect", "ncfd/errors.py", "ConnectFailed", "exit_code = 4", "exit_code = 1",
      "a refused connection exits 1, not 4",
      f"{HANDSHAKES}::test_refused_proxy_is_reported_without_v"),
    M("exit-proxy", "ncfd/errors.py", "ProxyError", "exit_code = 5", "exit_code = 1",
      "a proxy's refusal exits 1, not 5", f"'{HOSTILE}[403]'"),
    M("exit-auth", "ncfd/errors.py", "AuthFailed", "exit_code = 6", "exit_code = 5",
      "an authentication failure exits 5, not 6", f"'{HOSTILE}[407-without-credentials]'"),
    M("exit-timeout", "ncfd/errors.py", "TimedOut", "exit_code = 7", "exit_code = 1",
      "a timeout exits 1, not 7", f"'{HOSTILE}[silent-connect]'"),
    M("exit-fdpass", "ncfd/errors.py", "FdPassError", "exit_code = 8", "exit_code = 1",
      "-F with stdout no socket exits 1, not 8",
      f"{HANDSHAKES}::test_stdout_pipe_is_refused_with_a_pointer_to_proxyusefdpass"),
    M("exit-pac", "ncfd/errors.py", "PacError", "exit_code = 9", "exit_code = 1",
      "an unusable PAC exits 1, not 9", "'tests/test_pac.py::test_a_hostile_pac_is_one_clear_line[throws]'"),
    M("exit-internal-traceback", "ncfd/cli.py", "main",
      "        return EXIT_INTERNAL", "        raise",
      "a bug of ours ends in a traceback, not one line and 70",
      "tests/test_options.py::test_internal_error_is_one_line_saying_how_to_report"),
    # --- PAC limits -----------------------------------------------------------------------------
    M("pac-no-memory-limit", "ncfd/pac.py", "Engine.__init__",
      "self.context.set_memory_limit(MEMORY_LIMIT)", "pass",
      "a PAC may take all the memory it wants (until its CPU limit)",
      "tests/test_pac_engine.py::test_a_bad_pac_is_one_clear_error -k memory"),
    M("pac-no-stack-limit", "ncfd/pac.py", "Engine.__init__",
      "self.context.set_max_stack_size(STACK_LIMIT)", "self.context.set_max_stack_size(0)",
      "a recursing PAC overflows the native stack (a crash)",
      "'tests/test_pac.py::test_a_hostile_pac_is_one_clear_line[deep-recursion]'"),
    # Also the hang guard: the engine runs in a thread the test joins with a bound.
    M("pac-no-cpu-limit", "ncfd/pac.py", "Engine._eval",
      "self.context.set_time_limit(max(self.cpu_seconds, 0.001))", "self.context.set_time_limit(-1)",
      "an endless PAC runs for ever in its thread",
      "tests/test_pac_engine.py::test_a_bad_pac_is_one_clear_error -k 'CPU and loading'"),
    M("pac-unbounded-evaluation", "ncfd/routes.py", "from_pac",
      "bounded(deadline, ask, what, stack=8 << 20)", "ask()",
      "the PAC is evaluated past the deadline (its CPU limit alone stops it)",
      "'tests/test_pac.py::test_a_hostile_pac_is_one_clear_line[endless-loop]'"),
    M("pac-endless-names", "ncfd/pac.py", "Engine.find",
      "[: max(0, MAX_NAMES - len(names))]", "",
      "a PAC gets every name it asks for resolved",
      "tests/test_pac_engine.py::test_a_pac_that_asks_for_endless_names_gets_a_bounded_number_answered"),
    # Issue 17: hostile input is one line, never an internal error.
    M("pac-nul-read-as-c-string", "ncfd/pac.py", "Engine.__init__",
      'if "\\x00" in text:', "if False:",
      "a PAC with a NUL (UTF-16 without a BOM) is cut there silently",
      "'tests/test_pac.py::test_a_hostile_pac_is_one_clear_line[nul-byte]'"),
    M("ntlm-malformed-challenge-escapes", "ncfd/proxy_auth.py", "Ntlm.respond",
      "except Exception as e:  # pyspnego's parser", "except KeyError as e:  # pyspnego's parser",
      "a malformed NTLM challenge is an internal error",
      "tests/test_hostile.py::test_a_malformed_ntlm_challenge_is_one_line_not_an_internal_error"),
    M("negotiate-token-not-base64-escapes", "ncfd/proxy_auth.py", "_decoded",
      "except ValueError:", "except TypeError:",
      "a Negotiate token that is not base64 is an internal error",
      f"'{HOSTILE}[negotiate-token-not-base64]'"),
    # Issue 17: a PAC's lookups stop at the caller's deadline.
    M("pac-lookups-outlive-the-caller", "ncfd/routes.py", "from_pac.resolve",
      "        deadline.remaining()\n", "",
      "the PAC's thread goes on resolving names after the caller gave up",
      "tests/test_api.py::test_pac_lookups_stop_at_the_callers_deadline"),
    # --- the password prompt --------------------------------------------------------------------
    M("prompt-echoes", "ncfd/password.py", "_ask_tty",
      "quiet[3] &= ~(termios.ECHO | termios.ECHONL)", "quiet[3] &= ~termios.ECHONL",
      "the password is echoed",
      "tests/test_prompt.py::test_an_answer_typed_the_instant_the_prompt_shows_is_taken_and_not_echoed"),
    M("prompt-takes-typeahead", "ncfd/password.py", "_ask_tty.hide",
      "termios.tcsetattr(tty, termios.TCSAFLUSH, quiet)", "termios.tcsetattr(tty, termios.TCSANOW, quiet)",
      "what was typed before the prompt is taken as the password",
      "tests/test_prompt.py::test_typeahead_from_before_the_prompt_is_not_taken_as_the_password"),
    M("prompt-signal-leaves-echo-off", "ncfd/password.py", "_restoring_on_signals._caught",
      "        self.restore()\n        signal.signal(number, signal.SIG_DFL)",
      "        signal.signal(number, signal.SIG_DFL)",
      "a signal at the prompt leaves the terminal without echo",
      "tests/test_prompt.py::test_a_signal_at_the_prompt_leaves_echo_on_and_ends_ncfd_by_that_signal"),
    # --- the hand-off (-F) ----------------------------------------------------------------------
    M("fdpass-two-byte-payload", "ncfd/fdpass.py", "pass_fd",
      '[b"\\0"]', '[b"\\0\\0"]',
      "a byte besides the one-byte payload reaches ssh",
      f"{HANDSHAKES}::test_direct_connection_is_passed"),
    M("fdpass-stdout-left-open", "ncfd/fdpass.py", "claim_stdout",
      "os.dup2(2, 1)", "pass",
      "a stray write can reach ssh ahead of the descriptor",
      f"{HANDSHAKES}::test_a_stray_write_after_stdout_is_claimed_goes_to_stderr"),
    M("fdpass-z-passes-nothing", "ncfd/cli.py", "_run",
      "    if out is not None:\n        from ncfd.fdpass import pass_fd",
      "    if out is not None and not opts.zero_io:\n        from ncfd.fdpass import pass_fd",
      "-F -z negotiates but passes no socket (nc passes it)",
      f"{HANDSHAKES}::test_z_with_f_still_negotiates_and_passes_the_socket"),
    M("dial-no-rcvbuf", "ncfd/dial.py", "_prepare",
      "sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)", "pass",
      "-I is ignored", f"{HANDSHAKES}::test_passed_socket_has_the_buffer_sizes_of_i_and_o"),
    M("dial-no-sndbuf", "ncfd/dial.py", "_prepare",
      "sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, opts.sndbuf)", "pass",
      "-O is ignored", f"{HANDSHAKES}::test_passed_socket_has_the_buffer_sizes_of_i_and_o"),
    # --- ncfd-fdrecv ----------------------------------------------------------------------------
    M("fdrecv-extra-descriptors-kept", "ncfd/fdrecv.py", "receive",
      "            _close_all(fds)\n", "",
      "descriptors refused (more than one) are left open",
      "tests/test_fdrecv.py::test_two_descriptors_are_refused_and_closed"),
    M("fdrecv-w-0-is-no-wait", "ncfd/fdrecv.py", "_seconds",
      "return value or None", "return value",
      "-w 0 times out at once instead of waiting for ever",
      "tests/test_fdrecv.py::test_no_deadline_with_w_0 tests/test_fdrecv.py::test_w_0_waits_for_ever"),
    M("fdrecv-hung-dialer-left-running", "ncfd/fdrecv.py", "_timed_out",
      "        _kill(pid)\n", "",
      "a dialer that passes nothing within -w is not killed",
      "tests/test_fdrecv.py::test_dialer_hangs_without_passing_anything"),
    M("fdrecv-no-sigkill", "ncfd/fdrecv.py", "_kill",
      "os.kill(pid, signal.SIGKILL)", "pass",
      "a dialer that ignores SIGTERM is waited for for ever",
      "'tests/test_fdrecv.py::test_dialer_hangs_without_passing_anything[ignoring-SIGTERM]'"),
    # --- issue 17, merged -----------------------------------------------------------------------
    M("kerberos-kdc-unbounded", "ncfd/tunnel.py", "HttpTunnel._from_kdc",
      'return bounded(self.deadline, call, f"waiting for the Kerberos KDC ({service})")', "return call()",
      "a silent KDC holds ncfd past -w",
      "tests/test_kerberos.py::test_a_client_keytab_and_a_kdc_that_does_not_answer_is_bounded_by_w"),
    M("cache-other-owner-trusted", "ncfd/cache.py", "_check",
      "if found.st_uid != os.geteuid():", "if False:",
      "a cache another user owns is believed",
      "tests/test_pac.py::test_a_cache_someone_else_could_have_written_is_ignored_with_a_warning"
      " -k another"),
    M("cache-group-writable-trusted", "ncfd/cache.py", "_check",
      "if found.st_mode & 0o022:", "if found.st_mode & 0o002:",
      "a cache the group can write to is believed",
      "tests/test_pac.py::test_a_cache_someone_else_could_have_written_is_ignored_with_a_warning"
      " -k group"),
    M("cache-follows-links", "ncfd/cache.py", "_read",
      "os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK", "os.O_RDONLY | os.O_NONBLOCK",
      "a cached file that is a symbolic link is followed",
      "tests/test_pac.py::test_a_cache_someone_else_could_have_written_is_ignored_with_a_warning"
      " -k symbolic"),
    M("gsettings-deadline-unnamed", "ncfd/discovery.py", "_settings",
      "        deadline.phase = what\n", "",
      "the deadline ending in gsettings does not say so",
      "tests/test_discovery.py::test_a_settings_program_that_hangs_is_bounded_by_w_and_named -k gsettings"),
    M("pac-no-failover-on-a-dead-proxy", "ncfd/tunnel.py", "open_tunnel",
      "except (TimedOut, ResolveError, ConnectFailed, DeadProxy) as e:",
      "except (TimedOut, ResolveError, ConnectFailed) as e:",
      "a PAC's proxy that closes before answering ends the run",
      "tests/test_pac.py::test_a_proxy_that_dies_before_answering_is_passed_over_for_the_next_entry -k closes"),
    M("an-answer-taken-for-a-dead-proxy", "ncfd/tunnel.py", "HttpTunnel.open",
      "raise (ProxyError(str(e)) if answered else e) from None", "raise e from None",
      "a proxy that closes after its 407 is passed over as dead",
      "tests/test_pac.py::test_an_answer_is_not_a_dead_proxy_it_ends_the_run"),
    M("pac-every-entry-tried", "ncfd/routes.py", "from_pac",
      "entries = entries[:MAX_ROUTES]", "pass",
      "a PAC's 20,000 entries are all tried",
      "tests/test_pac.py::test_twenty_thousand_dead_entries_end_in_one_short_line_well_within_w"),
    # --- pending: tests being added alongside (issue 18) ------------------------------------------
    # pending: TLS hostname verification
    M("tls-hostname-unchecked", "ncfd/tls.py", "start_tls",
      "        tls = context.wrap_socket(sock, server_hostname=host)",
      "        context.check_hostname = False\n        tls = context.wrap_socket(sock, server_hostname=host)",
      "an HTTPS proxy's certificate for another name is accepted",
      "tests/test_chains_tls.py"),
    # pending: --proxy-cacert also trusts the system's CAs
    M("cacert-replaces-the-system-cas", "ncfd/tls.py", "start_tls",
      "context = ssl.create_default_context(cafile=cafile)",
      "context = ssl.create_default_context(cafile=cafile)\n"
      "        if cafile is not None:\n"
      "            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
      "            context.load_verify_locations(cafile)",
      "--proxy-cacert trusts its file only, not the system's CAs as well",
      "tests/test_chains_tls.py tests/test_pac.py -k 'cacert or https'"),
    # pending: PAC SOCKS means SOCKS4
    M("pac-socks-is-socks5", "ncfd/pac.py", "KEYWORDS",
      '"socks": ("4", False, 1080)', '"socks": ("5", False, 1080)',
      "a PAC's SOCKS entry speaks SOCKS5, not SOCKS4 as browsers do",
      "tests/test_pac.py -k 'kind_of_entry or socks'"),
    M("pac-socks4-sends-the-name", "ncfd/routes.py", "_hops",
      'remote_dns=protocol != "4"', "remote_dns=True",
      "a PAC's SOCKS4 entry is sent the name (SOCKS4A), not an address",
      "tests/test_pac.py -k 'kind_of_entry or socks'"),
    # pending: a refusal does not mark the proxy dead
    M("a-refusal-marks-the-proxy-dead", "ncfd/tunnel.py", "open_tunnel",
      "            sock = open_route(spec, route, share)\n",
      "            try:\n"
      "                sock = open_route(spec, route, share)\n"
      "            except ProxyError:\n"
      "                if spec.on_route is not None and route.hops:\n"
      "                    spec.on_route(route, False)\n"
      "                raise\n",
      "a proxy that refused (it is alive) is tried last by the next runs",
      "tests/test_pac.py -k 'dead or answer'"),
    # pending: deadline shares
    M("deadline-share-of-the-whole", "ncfd/deadline.py", "Deadline.share",
      "Deadline(self.remaining() / max(entries, 1), self)", "Deadline(self.seconds / max(entries, 1), self)",
      "a route's share is of the whole deadline, not of what is left",
      "tests/test_pac.py -k 'share or deadline'"),
    # pending: Basic is sent once, not again on every 407
    M("basic-resent-on-every-407", "ncfd/proxy_auth.py", "Basic.respond",
      "        if self.sent:\n            return None\n", "",
      "Basic credentials are sent again after the proxy refused them",
      "tests/test_auth.py -k 'basic or tinyproxy'"),
    # pending: the password file
    M("password-file-follows-links", "ncfd/password.py", "read_password_file",
      "os.O_RDONLY | os.O_NOFOLLOW", "os.O_RDONLY",
      "--proxy-password-file follows a symbolic link",
      "tests/test_auth.py -k password_file"),
    M("password-empty-accepted", "ncfd/password.py", "Password.__call__",
      "            if not self._value:\n", "            if False:\n",
      "an empty password is sent",
      "tests/test_auth.py -k password"),
    M("password-asked-each-time", "ncfd/password.py", "Password.__call__",
      "if self._value is None:", "if True:",
      "the password is fetched (the prompt shown) on every use",
      "tests/test_auth.py -k 'password or prompt'"),
    # pending: MAX_REFUSAL_BODY
    M("refusal-body-unbounded", "ncfd/http_connect.py", "ConnectExchange.feed_body",
      "if self._body > MAX_REFUSAL_BODY:", "if False:",
      "a refusal's body is read however long it is",
      "tests/test_http_connect.py tests/test_hostile.py -k 'body or refusal'"),
    # pending: SOCKS usage errors come before any connection
    M("socks5-long-name-unchecked", "ncfd/socks_proxy.py", "SocksRequest.__init__",
      "if literal is None and len(_idna(host)) > 255:", "if False:",
      "a name too long for SOCKS5 is found out only at the proxy",
      f"{HANDSHAKES}::test_socks5_host_name_too_long tests/test_first_contact.py -k socks"),
    # --- --check ---------------------------------------------------------------------------------
    M("check-tls-in-the-way-passes", "ncfd/diagnose.py", "VERDICTS",
      '"tls": (False, 5,', '"tls": (True, 0,',
      "a TLS-inspecting proxy in the tunnel is reported as a working route",
      "tests/test_check.py -k tls"),
    M("check-silence-waits-past-w", "ncfd/diagnose.py", "run",
      "wait = min(FIRST_BYTES_WAIT, deadline.seconds)", "wait = FIRST_BYTES_WAIT",
      "a silent far end is waited for 5 s whatever -w says",
      "tests/test_check.py::test_a_far_end_that_stays_silent_is_a_working_tunnel_said_so_within_the_wait"),
    M("check-imported-on-the-handoff", "ncfd/cli.py", "_run",
      "    opts = parse_args(argv)\n", "    import ncfd.diagnose  # noqa: F401\n    opts = parse_args(argv)\n",
      "every hand-off imports --check's module",
      "tests/test_check.py::test_the_handoff_does_not_import_the_check_module"),
    # pending: the SOCKS5 greeting's 3 s bound
    M("socks5-greeting-unbounded", "ncfd/socks_proxy.py", "_Recording._arm",
      "min(left, GREETING_LIMIT) if self.greeting and not self.received else left", "left",
      "a silent SOCKS5 greeting costs the whole deadline",
      "tests/test_first_contact.py::test_a_forgotten_x_connect_costs_seconds_and_says_so"),
    # pending: the SOCKS fuzz
    M("socks-invalid-reply-escapes", "ncfd/socks_proxy.py", "_translate",
      'return ProxyError(f"{proxy} sent an invalid reply ({quote(received)}): is it a {proxy.kind} proxy?")',
      "return e",
      "PySocks's error for a malformed reply escapes as is, not an NcfdError",
      "tests/test_fuzz.py::test_socks_garbage_only_ever_raises_ncfd_errors"),
    # pending: the QuickJS module sandbox
    M("pac-pending-jobs-run", "ncfd/pac.py", "Engine._eval",
      "            return self.context.eval(code)\n",
      "            result = self.context.eval(code)\n"
      "            while self.context.execute_pending_job():\n"
      "                pass\n"
      "            return result\n",
      "a PAC's dynamic import() settles, its callbacks run",
      "tests/test_pac_engine.py::test_the_sandbox_loads_no_modules"),
    # pending: URL redaction
    M("proxy-url-error-unredacted", "ncfd/proxies.py", "parse_proxy_url",
      "shown = _redacted(value)", "shown = value",
      "an invalid proxy URL's message shows its password",
      "tests/test_proxy_urls.py"),
]  # fmt: skip

#!/usr/bin/env perl
# Split an scp (or any "<key> ..." file) into contiguous parts, with the behaviour of Kaldi's
# utils/split_scp.pl (audiorl.data.ops.split_scp_keys is the same algorithm, for split_data.sh):
#   utils/split_scp.pl [--utt2spk=<utt2spk>] <in.scp> <out1.scp> [<out2.scp> ...]
#   utils/split_scp.pl -j <num-jobs> <job-id> [--one-based] [--utt2spk=<utt2spk>] <in.scp> [<out.scp>]
# Without --utt2spk, part sizes differ by at most one line (the first parts take the extra lines).
# With it, all lines of a speaker go to the same part: speakers are dealt out evenly, then a speaker at
# the edge of a part moves to the neighbouring part while that makes the two sizes closer.
# The -j form writes only part <job-id> (0-based, or 1-based with --one-based) to <out.scp> or stdout.
# "-" as an output means stdout. Refuses to write more parts than there are lines (or speakers).
# Exit status: 0 success, 1 failure (bad input, too many parts), 2 usage error.
use strict;
use warnings;

my $usage = "Usage: $0 [--utt2spk=<utt2spk>] <in.scp> <out1.scp> [<out2.scp> ...]\n"
  . "   or: $0 -j <num-jobs> <job-id> [--one-based] [--utt2spk=<utt2spk>] <in.scp> [<out.scp>]\n"
  . "Splits <in.scp> into contiguous parts; with --utt2spk each speaker's lines stay in one part.\n";
sub usage_error { print STDERR "$0: $_[0]\n$usage"; exit 2; }
sub fail { print STDERR "$0: $_[0]\n"; exit 1; }

my ($num_jobs, $job_id, $one_based, $utt2spk_file);
while (@ARGV && $ARGV[0] =~ /^-./) {
  my $opt = shift @ARGV;
  if ($opt eq '--help' || $opt eq '-h') { print $usage; exit 0; }
  elsif ($opt eq '-j') {
    @ARGV >= 2 || usage_error("-j needs <num-jobs> <job-id>");
    ($num_jobs, $job_id) = splice(@ARGV, 0, 2);
    $num_jobs =~ /^[1-9]\d*$/ || usage_error("-j: <num-jobs> must be a positive integer, got '$num_jobs'");
    $job_id =~ /^\d+$/ || usage_error("-j: <job-id> must be an integer, got '$job_id'");
  }
  elsif ($opt eq '--one-based') { $one_based = 1; }
  elsif ($opt =~ /^--utt2spk=(.+)$/) { $utt2spk_file = $1; }
  elsif ($opt eq '--utt2spk') { @ARGV || usage_error("--utt2spk needs a file"); $utt2spk_file = shift @ARGV; }
  elsif ($opt eq '--') { last; }
  else { usage_error("unknown option '$opt'"); }
}
my ($in, @outputs);
if (defined $num_jobs) {
  (@ARGV == 1 || @ARGV == 2)
    || usage_error("-j form: expected <in.scp> [<out.scp>], got " . scalar(@ARGV) . " argument(s)");
  $in = $ARGV[0];
  my $base = $one_based ? 1 : 0;
  ($job_id >= $base && $job_id < $num_jobs + $base)
    || usage_error("-j: <job-id> $job_id out of range " . $base . ".." . ($num_jobs + $base - 1));
} else {
  $one_based && usage_error("--one-based only goes with -j");
  @ARGV >= 2 || usage_error("expected <in.scp> and at least one output, got " . scalar(@ARGV) . " argument(s)");
  ($in, @outputs) = @ARGV;
}
my $num_parts = defined $num_jobs ? $num_jobs : scalar(@outputs);

open(my $in_fh, '<', $in) || fail("$in: cannot open: $!");
my @lines = <$in_fh>;
close $in_fh;
@lines || fail("$in: empty input, nothing to split");
for my $i (0 .. $#lines) {
  $lines[$i] =~ /\S/ || fail("$in:" . ($i + 1) . ": empty line; delete it");
  $lines[$i] .= "\n" unless $lines[$i] =~ /\n$/;
}

my @parts;  # array of array refs of lines
if (!defined $utt2spk_file) {
  my $n = scalar @lines;
  $num_parts <= $n
    || fail("refusing to split $n lines of $in into $num_parts parts: use at most $n parts (jobs)");
  my $per = int($n / $num_parts);
  my $rem = $n - $per * $num_parts;
  my $k = 0;
  for my $j (0 .. $num_parts - 1) {
    my $size = $per + ($j < $rem ? 1 : 0);
    push @parts, [@lines[$k .. $k + $size - 1]];
    $k += $size;
  }
} else {
  open(my $u_fh, '<', $utt2spk_file) || fail("$utt2spk_file: cannot open: $!");
  my %utt2spk;
  while (my $l = <$u_fh>) {
    my @f = split(' ', $l);
    @f == 2 || fail("$utt2spk_file:$.: expected 2 fields '<utt> <spk>', got " . scalar(@f));
    $utt2spk{$f[0]} = $f[1];
  }
  close $u_fh;
  my (@spks, %spk_lines);
  for my $i (0 .. $#lines) {
    my ($u) = split(' ', $lines[$i]);
    my $s = $utt2spk{$u};
    defined $s || fail("$in:" . ($i + 1) . ": utterance '$u' is not in $utt2spk_file");
    push @spks, $s unless exists $spk_lines{$s};
    push @{$spk_lines{$s}}, $lines[$i];
  }
  my $ns = scalar @spks;
  $ns >= $num_parts
    || fail("refusing to split $ns speakers into $num_parts parts keeping speakers together: use at most $ns parts");
  my (@spk_parts, @size);
  for my $j (0 .. $num_parts - 1) { $spk_parts[$j] = []; $size[$j] = 0; }
  for my $i (0 .. $ns - 1) {
    my $j = int($i * $num_parts / $ns);
    push @{$spk_parts[$j]}, $spks[$i];
    $size[$j] += scalar @{$spk_lines{$spks[$i]}};
  }
  # Move edge speakers to the neighbouring part while that brings the two sizes closer; every move
  # lowers the sum of squared sizes, so this terminates.
  my $changed = 1;
  while ($changed) {
    $changed = 0;
    for my $j (0 .. $num_parts - 1) {
      if ($j < $num_parts - 1 && @{$spk_parts[$j]}) {
        my $c = scalar @{$spk_lines{$spk_parts[$j][-1]}};
        if (abs(($size[$j + 1] + $c) - ($size[$j] - $c)) < abs($size[$j + 1] - $size[$j])) {
          unshift @{$spk_parts[$j + 1]}, pop @{$spk_parts[$j]};
          $size[$j + 1] += $c; $size[$j] -= $c; $changed = 1;
        }
      }
      if ($j > 0 && @{$spk_parts[$j]}) {
        my $c = scalar @{$spk_lines{$spk_parts[$j][0]}};
        if (abs(($size[$j] - $c) - ($size[$j - 1] + $c)) < abs($size[$j] - $size[$j - 1])) {
          push @{$spk_parts[$j - 1]}, shift @{$spk_parts[$j]};
          $size[$j - 1] += $c; $size[$j] -= $c; $changed = 1;
        }
      }
    }
  }
  for my $j (0 .. $num_parts - 1) {
    @{$spk_parts[$j]} || fail("part " . ($j + 1) . " of $num_parts would be empty (too many parts for $ns speakers)");
    push @parts, [map { @{$spk_lines{$_}} } @{$spk_parts[$j]}];
  }
}

sub write_part {
  my ($file, $lines) = @_;
  my $fh;
  if ($file eq '-') { $fh = \*STDOUT; }
  else { open($fh, '>', $file) || fail("$file: cannot write: $!"); }
  print $fh @$lines;
  if ($file ne '-') { close($fh) || fail("$file: error closing: $!"); }
}
if (defined $num_jobs) {
  write_part(@ARGV == 2 ? $ARGV[1] : '-', $parts[$job_id - ($one_based ? 1 : 0)]);
} else {
  write_part($outputs[$_], $parts[$_]) for 0 .. $#outputs;
}
exit 0;

#!/usr/bin/env perl
# Expand spk2utt ("<spk> <utt1> <utt2> ..." lines) into utt2spk ("<utt> <spk>" lines), as Kaldi's
# utils/spk2utt_to_utt2spk.pl: one line per utterance, in input order.
#   utils/spk2utt_to_utt2spk.pl [spk2utt ...] > utt2spk      (reads stdin without file arguments)
# Exit status: 0 success, 1 bad input (message names the file and line), 2 usage error.
use strict;
use warnings;

my $usage = "Usage: $0 [<spk2utt> ...] > <utt2spk>\n"
  . "Expands spk2utt (\"<spk> <utt1> <utt2> ...\" lines) into utt2spk; reads stdin if no file is given.\n";
if (@ARGV && ($ARGV[0] eq '--help' || $ARGV[0] eq '-h')) { print $usage; exit 0; }
shift @ARGV if @ARGV && $ARGV[0] eq '--';
for my $a (@ARGV) {
  if ($a =~ /^--?./) { print STDERR "$0: unknown option '$a'\n$usage"; exit 2; }
  if ($a ne '-' && ! -r $a) { print STDERR "$0: $a: no such file or not readable\n"; exit 1; }
}

while (my $line = <>) {
  my @f = split(' ', $line);
  if (@f < 2) {
    chomp $line;
    print STDERR "$0: $ARGV:$.: expected '<spk> <utt1> [<utt2> ...]', got '$line' "
      . "(a speaker needs at least one utterance)\n";
    exit 1;
  }
  my $s = shift @f;
  print "$_ $s\n" for @f;
} continue {
  close ARGV if eof;
}

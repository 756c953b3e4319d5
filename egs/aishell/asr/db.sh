# Where the corpus lives: the directory the official archives are downloaded to and extracted in
# (local/download.sh; it then holds data_aishell/{wav,transcript}). A relative path is relative to the recipe
# dir (wav.scp paths then stay relative too); set AISHELL in the environment to use a shared copy, e.g.
#   export AISHELL=/data/corpora      # holding /data/corpora/data_aishell/wav/train/S0002/...
AISHELL=${AISHELL:-downloads}

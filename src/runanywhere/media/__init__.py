"""Audio and image helpers: conversion, resampling, files, capture and playback."""
